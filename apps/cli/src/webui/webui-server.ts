/**
 * `webtune webui`'s server: the built web app as static files, and the local API the board's
 * remote mode calls (apps/web/src/remote/remote-client.ts):
 *
 *   GET  /api/info                 {name, version, device, run: {id, status} | null}
 *   POST /api/runs {config}        starts a training run from LLaMA-Factory keys -> {id}
 *   POST /api/runs/:id/stop        stops it at the next step boundary (a checkpoint is saved)
 *   GET  /api/runs/:id             {id, status, outputDir, error?}
 *   GET  /api/runs/:id/events      Server-Sent Events: `trainer` (each TrainerEvent), `log`
 *                                  ({line}), `end` ({status, error?}); replayed from the start,
 *                                  or after Last-Event-ID
 *
 * Errors are JSON {"error": "..."}. One run at a time (one device). Every request passes the
 * checks of ../server/http-guard.ts first (Host and Origin allow-lists, CORS, the token when one is
 * required); POSTs must be JSON (so browsers preflight them); a run's output_dir must lie under
 * --output-root unless the server was started with --allow-any-output-dir.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Device } from '@webtune/tensors';
import type { RawConfig, RunPlan, TrainerEvent } from '@webtune/train';
import {
  applyServerLimits,
  GuardError,
  HttpGuard,
  requestUrl,
  SERVER_OPTIONS,
} from '../server/http-guard.js';
import { runTraining } from '../train/run-training.js';
import { stripAnsi } from '../ui.js';
import { planOfRequest } from './run-request.js';

export type RunStatus = 'running' | 'completed' | 'stopped' | 'failed';

interface StreamedEvent {
  id: number;
  type: 'trainer' | 'log' | 'end';
  data: unknown;
}

interface Run {
  id: string;
  status: RunStatus;
  outputDir: string;
  error?: string;
  events: StreamedEvent[];
  listeners: Set<(event: StreamedEvent) => void>;
  abort: AbortController;
}

export interface WebuiOptions {
  /** The built web app (index.html and assets). */
  appDirectory: string;
  device: Device;
  version: string;
  /** Where runs write: a folder per run without output_dir; output_dir must lie under it. */
  outputRoot: string;
  /** Let runs write anywhere (`--allow-any-output-dir`): output_dir is not confined. */
  allowAnyOutputDir?: boolean;
  /** Origins allowed to call the API from another page (CORS); default none. */
  allowOrigins?: readonly string[];
  /** The address the server binds (`--host`, default 127.0.0.1): a name there is an allowed Host. */
  bindHost?: string;
  /** More Host names the server answers to (`--allow-host`; `*` any); loopback names and IPs pass. */
  allowedHosts?: readonly string[];
  /** Every request must carry this token (`?token=`, cookie, Bearer); null/undefined: none. */
  token?: string | null;
  onLog?: (line: string) => void;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const MAX_BODY = 1 << 20;

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  response.end(text);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
    throw new ApiError(415, 'send the request body as Content-Type: application/json');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, `the request body is over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new ApiError(400, 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The HTTP server and a way to stop the current run (it saves a checkpoint) before closing. */
export interface Webui {
  server: Server;
  /** Asks the current run to stop and resolves when it has ended (at once when none runs). */
  stopRuns(): Promise<void>;
}

export function createWebuiServer(options: WebuiOptions): Webui {
  const runs = new Map<string, Run>();
  let current: Run | null = null;
  const appDirectory = resolve(options.appDirectory);
  const allowOrigins = new Set(options.allowOrigins ?? []);

  const emit = (run: Run, type: StreamedEvent['type'], data: unknown) => {
    const event = { id: run.events.length + 1, type, data };
    run.events.push(event);
    for (const listener of run.listeners) listener(event);
  };

  const startRun = (raw: RawConfig): Run => {
    if (current?.status === 'running')
      throw new ApiError(409, `run ${current.id} is still running; stop it first`);
    const id = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
    let plan: RunPlan;
    const config: RawConfig = { ...raw };
    if (config.output_dir != null && config.output_dir !== '' && !options.allowAnyOutputDir) {
      config.output_dir = confinedOutputDir(options.outputRoot, config.output_dir);
    }
    try {
      plan = planOfRequest(config, options.outputRoot, id);
    } catch (error) {
      throw new ApiError(400, (error as Error).message);
    }
    const run: Run = {
      id,
      status: 'running',
      outputDir: resolve(plan.config.output_dir),
      events: [],
      listeners: new Set(),
      abort: new AbortController(),
    };
    runs.set(id, run);
    current = run;
    const log = (line: string) => {
      const clean = stripAnsi(line);
      options.onLog?.(`[${id}] ${clean}`);
      emit(run, 'log', { line: clean });
    };
    for (const note of plan.notes) log(`note: ${note}`);
    runTraining(plan, {
      device: options.device,
      source: 'webui',
      log,
      signal: run.abort.signal,
      onEvent: (event: TrainerEvent) => emit(run, 'trainer', event),
    }).then(
      (outcome) => {
        run.status =
          outcome.reason === 'completed' ? 'completed' : outcome.reason === 'stopped' ? 'stopped' : 'failed';
        if (outcome.reason === 'non-finite') run.error = outcome.problem ?? 'the loss became NaN or infinite';
        emit(run, 'end', { status: run.status, ...(run.error ? { error: run.error } : {}) });
      },
      (error: Error) => {
        run.status = 'failed';
        run.error = error.message.split('\n')[0];
        log(`failed: ${run.error}`);
        emit(run, 'end', { status: 'failed', error: run.error });
      },
    );
    return run;
  };

  const follow = (request: IncomingMessage, response: ServerResponse, run: Run) => {
    const after = Number(request.headers['last-event-id'] ?? 0) || 0;
    response.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    const send = (event: StreamedEvent) => {
      response.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
      if (event.type === 'end') response.end();
    };
    for (const event of run.events) if (event.id > after) send(event);
    if (run.events.at(-1)?.type === 'end') return;
    const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
    run.listeners.add(send);
    response.on('close', () => {
      clearInterval(keepAlive);
      run.listeners.delete(send);
    });
  };

  const serveStatic = async (pathname: string, response: ServerResponse) => {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname);
    } catch {
      throw new ApiError(400, 'bad path');
    }
    const target = normalize(join(appDirectory, relative === '/' ? 'index.html' : relative));
    if (target !== appDirectory && !target.startsWith(appDirectory + sep))
      throw new ApiError(403, 'outside the app folder');
    const file = existsSync(target) && statSync(target).isDirectory() ? join(target, 'index.html') : target;
    if (!existsSync(file)) throw new ApiError(404, `no file ${pathname}`);
    const body = await readFile(file);
    response.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
    });
    response.end(body);
  };

  const guard = new HttpGuard({
    bindHost: options.bindHost ?? '127.0.0.1',
    allowHosts: options.allowedHosts,
    allowOrigins: [...allowOrigins],
    token: options.token ?? null,
    allowHeaders: 'Authorization, Content-Type',
  });
  const server = createServer(SERVER_OPTIONS, async (request, response) => {
    const url = requestUrl(request);
    if (!url) {
      json(response, 400, { error: 'the request target is not a path' });
      return;
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    try {
      // Host, Origin, CORS and the token on every request (static files too); answers preflights.
      if (guard.check(request, response, url)) return;
      if (!path.startsWith('/api/') && path !== '/api') {
        if (request.method !== 'GET' && request.method !== 'HEAD')
          throw new ApiError(405, `${request.method} is not allowed here`);
        await serveStatic(url.pathname, response);
        return;
      }
      let parts: string[];
      try {
        parts = path.split('/').slice(2).map(decodeURIComponent);
      } catch {
        throw new ApiError(400, `the path ${JSON.stringify(path)} is not valid percent-encoding`);
      }
      if (request.method === 'GET' && path === '/api/info') {
        json(response, 200, {
          name: 'webtune',
          version: options.version,
          device: options.device.info,
          run: current ? { id: current.id, status: current.status } : null,
        });
      } else if (request.method === 'POST' && path === '/api/runs') {
        const body = await readJson(request);
        const config = body.config;
        if (!config || typeof config !== 'object' || Array.isArray(config))
          throw new ApiError(400, 'the body needs "config": an object of LLaMA-Factory keys');
        const run = startRun(config as RawConfig);
        json(response, 201, { id: run.id, outputDir: run.outputDir });
      } else if (parts[0] === 'runs' && parts.length >= 2) {
        const run = runs.get(parts[1]);
        if (!run) throw new ApiError(404, `no run ${parts[1]}`);
        if (request.method === 'GET' && parts.length === 2) {
          json(response, 200, {
            id: run.id,
            status: run.status,
            outputDir: run.outputDir,
            ...(run.error ? { error: run.error } : {}),
          });
        } else if (request.method === 'GET' && parts[2] === 'events' && parts.length === 3) {
          follow(request, response, run);
        } else if (request.method === 'POST' && parts[2] === 'stop' && parts.length === 3) {
          await readJson(request);
          if (run.status === 'running') run.abort.abort();
          json(response, 200, { id: run.id, status: run.status });
        } else {
          throw new ApiError(404, `no route ${request.method} ${path}`);
        }
      } else {
        throw new ApiError(404, `no route ${request.method} ${path}`);
      }
    } catch (error) {
      const status = error instanceof ApiError || error instanceof GuardError ? error.status : 500;
      if (!response.headersSent) json(response, status, { error: (error as Error).message });
      else response.end();
    }
  });
  const stopRuns = () =>
    new Promise<void>((done) => {
      const run = current;
      if (run?.status !== 'running') return done();
      run.listeners.add((event) => {
        if (event.type === 'end') done();
      });
      run.abort.abort();
    });
  return { server: applyServerLimits(server), stopRuns };
}

/**
 * A run's output_dir inside `outputRoot`: a relative one is taken under it; one that resolves
 * elsewhere (an absolute path, `..`) is refused, so a page cannot make runs write anywhere the
 * server's user can.
 */
export function confinedOutputDir(outputRoot: string, outputDir: unknown): string {
  const root = resolve(outputRoot);
  const target = resolve(root, String(outputDir));
  if (target !== root && !target.startsWith(root + sep)) {
    throw new ApiError(
      403,
      `output_dir ${JSON.stringify(String(outputDir))} is outside --output-root ${root}; give a folder under it (or start webui with --allow-any-output-dir)`,
    );
  }
  return target;
}
