import { envCommand, envHelp } from './commands/env.js';
import { red, UsageError } from './ui.js';

interface Command {
  summary: string;
  help: string;
  run: (argv: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  env: { summary: 'show the WebGPU adapter, limits and features', help: envHelp, run: envCommand },
};

const USAGE = () => `webtune <command> [options]

Fine-tune language models on WebGPU.

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Run \`webtune <command> --help\` for a command's options and examples.
Global options: --verbose (stack traces on errors), --help, --version`;

/** Runs the CLI; returns the exit code. Errors become one line on stderr (stack with --verbose). */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const args = argv.filter((a) => a !== '--verbose');
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    console.log(process.env.npm_package_version ?? '0.0.0');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`webtune: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    const err = error as Error & { code?: string };
    console.error(`${red('webtune')} ${name}: ${err.message}`);
    if (verbose) console.error(err.stack);
    // Bad options (node:util parseArgs) and UsageError are the user's to fix: exit 2.
    if (error instanceof UsageError) return error.exitCode;
    return err.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}
