/**
 * Property-based fuzzing of both HTTP APIs and the training-config reader (issue 19): random
 * methods, paths, Host/Origin/Content-Type headers and bodies get a 2xx/4xx/503 answer with a JSON
 * error shape, never a 500 or a dropped connection, and the server stays healthy. Bounded for CI.
 */
import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planOf } from '../train/config.js';
import { UsageError } from '../ui.js';
import { fakeEngine, listen, send, startServe, startWebui } from './testing-servers.js';

const RUNS = 400;

const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD');
const segment = fc.oneof(
  fc.constantFrom(
    'v1',
    'models',
    'chat',
    'completions',
    'api',
    'runs',
    'info',
    'events',
    'stop',
    'health',
    '..',
    '%E0%A4%A',
    '%00',
    '%2F',
  ),
  fc.string({ maxLength: 6 }).map(encodeURIComponent),
);
const randomPath = fc
  .tuple(fc.array(segment, { maxLength: 4 }), fc.option(fc.string({ maxLength: 8 }).map(encodeURIComponent)))
  .map(([parts, query]) => `/${parts.join('/')}${query ? `?${query}` : ''}`);
const path = fc.oneof(
  randomPath,
  fc.constantFrom(
    '/v1/chat/completions',
    '/v1/models',
    '/health',
    '/api/runs',
    '/api/info',
    '/api/runs/x/events',
    '//x/y',
  ),
);
const message = fc.record(
  {
    role: fc.constantFrom('user', 'system', 'assistant', 'tool', 1),
    content: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc
    .record(
      {
        messages: fc.oneof(fc.array(message, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
        stream: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })),
        max_tokens: fc.oneof(fc.integer({ min: -2, max: 600 }), fc.double()),
        temperature: fc.oneof(fc.double(), fc.string({ maxLength: 3 })),
        stop: fc.oneof(fc.string({ maxLength: 3 }), fc.array(fc.string({ maxLength: 3 }), { maxLength: 6 })),
        model: fc.constantFrom('fake', 'other'),
        config: fc.dictionary(
          fc.constantFrom('output_dir', 'model_name_or_path', 'dataset', 'stage', 'seed', 'val_size'),
          fc.jsonValue({ maxDepth: 1 }),
          { maxKeys: 4 },
        ),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
);
const headers = fc.record(
  {
    'Content-Type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      '',
    ),
    // '' leaves the header out (most requests come without a hostile one).
    Origin: fc.constantFrom('', '', '', 'https://evil.example', 'null', 'http://127.0.0.1:1'),
    Host: fc.constantFrom('', '', '', 'evil.example', 'localhost', '10.0.0.1:80', 'bad host'),
    Authorization: fc.constantFrom('Bearer wrong', 'Basic x', ''),
  },
  { requiredKeys: [] },
);

async function fuzz(port: number, label: string, check: () => Promise<void>) {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(method, path, headers, fc.option(body), async (verb, target, extra, payload) => {
      const sent = { ...extra };
      for (const key of Object.keys(sent) as (keyof typeof sent)[]) if (sent[key] === '') delete sent[key];
      const response = await send(port, {
        method: verb,
        path: target,
        headers: sent as Record<string, string>,
        body: payload === null || verb === 'GET' || verb === 'HEAD' ? undefined : payload,
      });
      if (response === 'abandoned') return false;
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status >= 500 && response.status !== 503) {
        throw new Error(
          `${verb} ${target} ${JSON.stringify(sent)} ${payload}: ${response.status} ${response.body}`,
        );
      }
      if (response.status >= 400 && verb !== 'HEAD') JSON.parse(response.body);
      return true;
    }),
    { numRuns: RUNS, seed: 19 },
  );
  await check();
  console.log(
    `${label} fuzz: ${RUNS} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, 0 server errors`,
  );
}

describe('HTTP API fuzz', () => {
  const engine = fakeEngine();
  const serve = startServe(engine, { maxBodyBytes: 4096 });
  const webui = startWebui();
  let servePort: number;
  let webuiPort: number;
  beforeAll(async () => {
    servePort = await listen(serve);
    webuiPort = await listen(webui.server);
  });
  afterAll(() => {
    serve.close();
    webui.server.close();
    rmSync(webui.folder, { recursive: true, force: true });
  });

  it(`serve: ${RUNS} random requests, no 500, healthy after`, async () => {
    await fuzz(servePort, 'serve', async () => {
      const health = await send(servePort, { path: '/health' });
      expect(health !== 'abandoned' && health.status).toBe(200);
    });
  }, 60_000);

  it(`webui: ${RUNS} random requests, no 500, healthy after`, async () => {
    await fuzz(webuiPort, 'webui', async () => {
      const info = await send(webuiPort, { path: '/api/info' });
      expect(info !== 'abandoned' && info.status).toBe(200);
    });
  }, 60_000);
});

describe('training config reader fuzz', () => {
  it(`any keys and values: a resolved config or a UsageError (${RUNS * 5} cases)`, () => {
    let cases = 0;
    const keys = fc.constantFrom(
      'model_name_or_path',
      'dataset',
      'output_dir',
      'stage',
      'finetuning_type',
      'lora_rank',
      'learning_rate',
      'seed',
      'val_size',
      'max_steps',
      'num_train_epochs',
      'cutoff_len',
      'lerning_rate',
      'resume_from_checkpoint',
      'save_steps',
      'lora_target',
      'template',
    );
    fc.assert(
      fc.property(fc.dictionary(keys, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 8 }), (raw) => {
        cases++;
        try {
          planOf({ model_name_or_path: 'm', dataset: 'd', output_dir: 'o', ...raw } as never);
        } catch (error) {
          if (!(error instanceof UsageError)) throw new Error(`untyped error: ${(error as Error).stack}`);
        }
        return true;
      }),
      { numRuns: RUNS * 5, seed: 19 },
    );
    console.log(`training config reader fuzz: ${cases} cases, 0 untyped errors`);
  });
});
