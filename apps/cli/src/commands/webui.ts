import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { numberOption, optional, parseCommandLine } from '../args.js';
import { openDevice } from '../model-loading.js';
import { isLoopbackHost, SERVER_LIMITS } from '../server/http-guard.js';
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
  --output-root DIR     where runs write (default saves/webui); a run's output_dir must lie
                        under it
  --allow-any-output-dir  let runs write to any output_dir the page sets
  --token               require a token even on loopback. Bound beyond loopback (--host 0.0.0.0)
                        a token is always required. It is printed in the URL to open
                        (http://HOST:PORT/?token=...), or set it with WEBTUNE_WEBUI_TOKEN
  --allow-host NAME     also answer to this Host name (repeatable; * any). Loopback names, IP
                        addresses and the --host name always pass (a DNS-rebinding guard)
  --allow-origin URL    let pages from this origin use the API (repeatable; default: none)

Requests: POST bodies must be Content-Type: application/json (else 415), at most 1 MiB (413).
Limits: request head ${SERVER_LIMITS.maxHeaderBytes / 1024} KiB (431), head within ${SERVER_LIMITS.headersTimeoutMs / 1000}s and whole request within
${SERVER_LIMITS.requestTimeoutMs / 1000}s (408), ${SERVER_LIMITS.maxConnections} open connections, one training run at a time (409).

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
    'allow-host': { type: 'string', multiple: true },
    token: { type: 'boolean' },
    'allow-any-output-dir': { type: 'boolean' },
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
  const loopback = isLoopbackHost(host);
  // Beyond loopback anyone on the network could start runs: a token, as Jupyter does.
  const token =
    values.token || !loopback ? process.env.WEBTUNE_WEBUI_TOKEN || randomBytes(24).toString('hex') : null;
  const { server, stopRuns } = createWebuiServer({
    appDirectory,
    device,
    version: version(),
    outputRoot: resolve(optional(values, 'output-root') ?? 'saves/webui'),
    allowAnyOutputDir: values['allow-any-output-dir'] === true,
    allowOrigins: (values['allow-origin'] as string[] | undefined) ?? [],
    bindHost: host,
    allowedHosts: (values['allow-host'] as string[] | undefined) ?? [],
    token,
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
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  console.log(
    `webtune webui: http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${bound}/${token ? `?token=${token}` : ''} (app ${appDirectory})`,
  );
  if (!loopback)
    console.error(
      yellow(
        `warning: bound to ${host}: anyone who can reach this port and has the token can start training runs`,
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
