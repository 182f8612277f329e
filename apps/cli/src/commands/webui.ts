import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { numberOption, optional, parseCommandLine } from '../args.js';
import { openDevice } from '../model-loading.js';
import { dim, UsageError, yellow } from '../ui.js';
import { version } from '../version.js';
import { createWebuiServer } from '../webui/webui-server.js';

export const webuiHelp = `webtune webui [--host H] [--port N] [options]

Serves the webtune web app at http://127.0.0.1:7860 and a local API through which the page (its
Remote tab) runs training on this machine's device: model and dataset paths are paths on this
machine, runs write to --output-root/<run> unless the page sets output_dir. One run at a time.
Stop with Ctrl-C.

Options:
  --host H              address to bind (default 127.0.0.1: this machine only)
  --port N              port (default 7860; 0 picks a free one)
  --app DIR             the built web app (default: the dist/ of the @webtune/web package)
  --output-root DIR     where runs write (default saves/webui)
  --allow-origin URL    let pages from this origin use the API (repeatable; default: none)

Examples:
  webtune webui
  webtune webui --port 8080 --output-root ./runs
  webtune webui --allow-origin http://localhost:5173`;

/** The built app of @webtune/web, a dependency of this CLI: its `dist/` folder. */
function defaultAppDirectory(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@webtune/web/package.json')), 'dist');
}

export async function webuiCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    app: { type: 'string' },
    'output-root': { type: 'string' },
    'allow-origin': { type: 'string', multiple: true },
  });
  const host = optional(values, 'host') ?? '127.0.0.1';
  const port = numberOption(values, 'port', { integer: true, min: 0, max: 65535 }) ?? 7860;
  const appDirectory = resolve(optional(values, 'app') ?? defaultAppDirectory());
  if (!existsSync(join(appDirectory, 'index.html'))) {
    throw new UsageError(
      `the web app is not built (no ${join(appDirectory, 'index.html')}): run \`pnpm --filter @webtune/web build\`, or give --app DIR`,
      1,
    );
  }
  const device = await openDevice();
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(host);
  const { server, stopRuns } = createWebuiServer({
    appDirectory,
    device,
    version: version(),
    outputRoot: resolve(optional(values, 'output-root') ?? 'saves/webui'),
    allowOrigins: (values['allow-origin'] as string[] | undefined) ?? [],
    allowedHosts: loopback ? undefined : ['*'],
    onLog: (line) => console.log(dim(line)),
  });
  await new Promise<void>((done, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        error.code === 'EADDRINUSE'
          ? new UsageError(`port ${port} on ${host} is in use; pick another with --port`, 1)
          : error,
      ),
    );
    server.listen(port, host, () => done());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  console.log(
    `webtune webui: http://${host.includes(':') ? `[${host}]` : host}:${bound} (app ${appDirectory})`,
  );
  if (!loopback)
    console.error(
      yellow(
        `warning: bound to ${host}: anyone who can reach this port can start training runs`,
        process.stderr,
      ),
    );
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      console.log('webtune webui: stopping (a running training run saves a checkpoint first)');
      void stopRuns().then(() => {
        server.close(() => done());
        server.closeAllConnections();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  device.destroy();
  return 0;
}
