import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TrainerEvent } from '@webtune/train';

/**
 * A stand-in for `webtune webui` that speaks the board's remote protocol (docs/guide/web.md) and
 * plays a scripted run: what the browser test checks the Remote mode against when the real server
 * is not built. It records the configs it was sent.
 */
export interface ProtocolServer {
  url: string;
  configs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startProtocolServer(script: TrainerEvent[]): Promise<ProtocolServer> {
  const configs: Record<string, unknown>[] = [];
  const runs = new Map<
    string,
    { events: { event: string; data: unknown }[]; done: boolean; stopped: boolean }
  >();
  const cors = (request: IncomingMessage, response: ServerResponse) => {
    const origin = request.headers.origin;
    if (origin && /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(origin)) {
      response.setHeader('access-control-allow-origin', origin);
      response.setHeader('vary', 'origin');
    }
  };
  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const server = createServer(async (request, response) => {
    cors(request, response);
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '600',
      });
      response.end();
      return;
    }
    if (request.method === 'GET' && path === '/api/info') {
      json(response, 200, { name: 'webtune', version: '0.0.0-test', device: null, run: null });
      return;
    }
    if (request.method === 'POST' && path === '/api/runs') {
      let body = '';
      for await (const chunk of request) body += chunk;
      const config = (JSON.parse(body) as { config?: Record<string, unknown> }).config;
      if (!config || typeof config.model_name_or_path !== 'string' || !config.model_name_or_path) {
        json(response, 400, { error: 'config.model_name_or_path is required' });
        return;
      }
      configs.push(config);
      const id = `run-${configs.length}`;
      const run = { events: [] as { event: string; data: unknown }[], done: false, stopped: false };
      runs.set(id, run);
      // Play the script a little at a time, as a real run would.
      (async () => {
        run.events.push({ event: 'log', data: { line: `loading ${config.model_name_or_path}` } });
        for (const event of script) {
          await new Promise((resolve) => setTimeout(resolve, 30));
          run.events.push({ event: 'trainer', data: event });
          if (run.stopped) break;
        }
        run.events.push({ event: 'end', data: { status: run.stopped ? 'stopped' : 'completed' } });
        run.done = true;
      })();
      json(response, 201, { id });
      return;
    }
    const match = /^\/api\/runs\/([^/]+)\/(events|stop)$/.exec(path);
    const run = match ? runs.get(match[1]) : undefined;
    if (match && !run) {
      json(response, 404, { error: `no run ${match[1]}` });
      return;
    }
    if (run && match?.[2] === 'stop' && request.method === 'POST') {
      run.stopped = true;
      json(response, 202, { stopping: true });
      return;
    }
    if (run && match?.[2] === 'events' && request.method === 'GET') {
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      let sent = Number(request.headers['last-event-id'] ?? 0);
      const timer = setInterval(() => {
        while (sent < run.events.length) {
          const { event, data } = run.events[sent];
          sent++;
          response.write(`id: ${sent}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        }
        if (run.done && sent >= run.events.length) {
          clearInterval(timer);
          response.end();
        }
      }, 20);
      request.on('close', () => clearInterval(timer));
      return;
    }
    json(response, 404, { error: `no route ${request.method} ${path}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    configs,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
