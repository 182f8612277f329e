import { oneLine, red, UsageError } from './ui.js';
import { version } from './version.js';

/** A command module: its help text and its entry point (loaded only when the command runs). */
interface CommandModule {
  help: string;
  run: (argv: string[]) => Promise<number>;
}

interface Command {
  summary: string;
  load: () => Promise<CommandModule>;
}

const COMMANDS: Record<string, Command> = {
  train: {
    summary: 'fine-tune from a LLaMA-Factory style YAML/JSON config',
    load: async () => {
      const m = await import('./commands/train.js');
      return { help: m.trainHelp, run: m.trainCommand };
    },
  },
  generate: {
    summary: 'continue a prompt and print the completion',
    load: async () => {
      const m = await import('./commands/generate.js');
      return { help: m.generateHelp, run: m.generateCommand };
    },
  },
  chat: {
    summary: 'interactive streaming chat (--compare: base and tuned side by side)',
    load: async () => {
      const m = await import('./commands/chat.js');
      return { help: m.chatHelp, run: m.chatCommand };
    },
  },
  eval: {
    summary:
      'evaluate: perplexity, benchmarks (mcq), predict + BLEU/ROUGE, blind A/B, model judge, forgetting',
    load: async () => {
      const m = await import('./commands/eval.js');
      return { help: m.evalHelp, run: m.evalCommand };
    },
  },
  export: {
    summary: 'merge an adapter into the model and write a Hugging Face folder',
    load: async () => {
      const m = await import('./commands/export.js');
      return { help: m.exportHelp, run: m.exportCommand };
    },
  },
  serve: {
    summary: 'OpenAI-compatible HTTP API (/v1/models, /v1/chat/completions)',
    load: async () => {
      const m = await import('./commands/serve.js');
      return { help: m.serveHelp, run: m.serveCommand };
    },
  },
  webui: {
    summary: 'serve the web app with a local training API',
    load: async () => {
      const m = await import('./commands/webui.js');
      return { help: m.webuiHelp, run: m.webuiCommand };
    },
  },
  data: {
    summary: 'validate, preview or measure a dataset',
    load: async () => {
      const m = await import('./commands/data.js');
      return { help: m.dataHelp, run: m.dataCommand };
    },
  },
  bench: {
    summary: 'benchmark kernels, training steps or generation',
    load: async () => {
      const m = await import('./commands/bench.js');
      return { help: m.benchHelp, run: m.benchCommand };
    },
  },
  env: {
    summary: 'show the WebGPU adapter, limits, features and versions',
    load: async () => {
      const m = await import('./commands/env.js');
      return { help: m.envHelp, run: m.envCommand };
    },
  },
};

const USAGE = () => `webtune <command> [options]

Fine-tune language models on WebGPU.

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Run \`webtune <command> --help\` for a command's options and examples.
Global options: --verbose (stack traces on errors), --help, --version
Exit codes: 0 success, 1 failure, 2 bad command line or config, 130 interrupted (Ctrl-C)

Examples:
  webtune train examples/quickstart.yaml
  webtune generate --model ./my-model --prompt "Once upon a time"
  webtune serve --model ./my-model --adapter ./saves/lora --port 8000`;

/** Runs the CLI; returns the exit code. Errors become one line on stderr (stack with --verbose). */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const args = argv.filter((a) => a !== '--verbose');
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    console.error(`webtune: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}`);
    return 2;
  }
  try {
    const module = await command.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(module.help);
      return 0;
    }
    return await module.run(rest);
  } catch (error) {
    const err = error as Error & { code?: string };
    console.error(`${red('webtune', process.stderr)} ${name}: ${oneLine(err.message ?? String(error))}`);
    if (verbose) console.error(err.stack);
    // Bad options (node:util parseArgs) and UsageError are the user's to fix: exit 2.
    if (error instanceof UsageError) return error.exitCode;
    // Settings that do not fit what they apply to: a resume the output folder cannot serve
    // (@webtune/train's CheckpointError), a val_size larger than the data (@webtune/data).
    if (err.name === 'CheckpointError' || err.name === 'DataConfigError') return 2;
    return err.code?.startsWith('ERR_PARSE_ARGS') ? 2 : 1;
  }
}
