/**
 * Test helpers for the two servers' HTTP layer, in process: a ChatEngine stand-in (the HTTP
 * checks, not generation, are under test; generation is tested in @webtune/nn and serve.test.ts),
 * a webui without a device, and raw requests that can set Host and abandon the exchange.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Device } from '@webtune/tensors';
import type { ChatEngine, CompletionOptions } from '../chat-engine.js';
import type { ChatMessage } from '../prompting.js';
import { createWebuiServer, type WebuiOptions } from '../webui/webui-server.js';
import { createOpenAiServer, type OpenAiServerOptions } from './openai-server.js';

/** How the stand-in engine answers: its text, or a failure after some text (mid-stream). */
export interface FakeBehaviour {
  /** Text streamed before a failure; the completion fails with `failWith` after it. */
  failWith?: Error;
  /** Waits this long before answering (ms). */
  delayMs?: number;
}

/** A ChatEngine stand-in: echoes the last message; `behaviour` decides delays and failures. */
export function fakeEngine(behaviour: () => FakeBehaviour = () => ({})): ChatEngine & { calls: number } {
  let queued = 0;
  const engine = {
    calls: 0,
    get queued() {
      return queued;
    },
    contextLength: 512,
    template: { name: 'fake' },
    async complete(messages: readonly ChatMessage[], options: CompletionOptions) {
      engine.calls++;
      queued++;
      try {
        const plan = behaviour();
        const text = `echo: ${messages.at(-1)?.content ?? ''}`.slice(0, 64);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, plan.delayMs ?? 2);
          options.signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new Error('aborted'));
          });
        });
        options.onText?.(text.slice(0, 6));
        if (plan.failWith) throw plan.failWith;
        options.onText?.(text.slice(6));
        return {
          text,
          finishReason: 'stop' as const,
          promptTokens: 3,
          completionTokens: text.length,
        };
      } finally {
        queued--;
      }
    },
  };
  return engine as unknown as ChatEngine & { calls: number };
}

/** Starts a server on a free loopback port; resolves its port. */
export async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

export function startServe(engine: ChatEngine, options: Partial<OpenAiServerOptions> = {}) {
  return createOpenAiServer(engine, { modelId: 'fake', ...options });
}

export function startWebui(options: Partial<WebuiOptions> = {}) {
  const folder = mkdtempSync(join(tmpdir(), 'webtune-guard-'));
  mkdirSync(join(folder, 'app'));
  writeFileSync(join(folder, 'app/index.html'), '<!doctype html><title>board</title>');
  const device = { info: { backend: 'none' } } as unknown as Device;
  const webui = createWebuiServer({
    appDirectory: join(folder, 'app'),
    device,
    version: '0.0.0',
    outputRoot: join(folder, 'runs'),
    ...options,
  });
  return { ...webui, folder };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with full control of its headers (Host included); `abandonAfterMs` closes it early. */
export function send(
  port: number,
  options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    abandonAfterMs?: number;
  },
): Promise<RawResponse | 'abandoned'> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        // A connection per request: a refused POST may close its connection (as it should).
        agent: false,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: { Host: `127.0.0.1:${port}`, ...options.headers },
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
        response.on('error', () => resolve('abandoned'));
      },
    );
    request.on('error', (error) =>
      options.abandonAfterMs !== undefined ? resolve('abandoned') : reject(error),
    );
    if (options.abandonAfterMs !== undefined) {
      setTimeout(() => {
        request.destroy();
        resolve('abandoned');
      }, options.abandonAfterMs);
    }
    if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}
