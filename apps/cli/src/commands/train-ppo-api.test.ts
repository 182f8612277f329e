import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, REPO_ROOT, trainerLog, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';

// PPO against a reward server (reward_model_type: api) in this process: it scores each text by its
// share of the letter "e", and records every request.
describe.skipIf(!requireFixtures(STORIES, DATASETS))('webtune train: PPO with reward_model_type api', () => {
  let folder: string;
  let server: Server;
  let url: string;
  let failing = false;
  const requests: { model: string; messages: string[] }[] = [];
  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-ppo-api-'));
    server = createServer((request, response) => {
      let text = '';
      request.on('data', (chunk) => {
        text += chunk;
      });
      request.on('end', () => {
        if (failing) {
          response.writeHead(500);
          response.end('reward model crashed');
          return;
        }
        const body = JSON.parse(text) as { model: string; messages: string[] };
        requests.push(body);
        const scores = body.messages.map((message) => message.split('e').length / (message.length + 1));
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ scores }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/score`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(folder, { recursive: true, force: true });
  });

  const run = (out: string, overrides: Record<string, string> = {}) =>
    webtune([
      'train',
      join(REPO_ROOT, 'examples/train_lora/stories260k_lora_ppo.yaml'),
      ...Object.entries({
        model_name_or_path: fixturePath(STORIES),
        dataset_dir: fixturePath(DATASETS),
        reward_model: url,
        reward_model_type: 'api',
        output_dir: out,
        max_steps: '2',
        save_steps: '1',
        max_new_tokens: '4',
        ppo_epochs: '1',
        ...overrides,
      }).map(([key, value]) => `${key}=${value}`),
    ]);

  it('scores answers on the server, saves each step, and a resume from checkpoint-1 repeats step 2', async () => {
    const out = join(folder, 'ppo');
    const first = await run(out);
    expect(errorLines(first.stderr)).toEqual([]);
    expect(first.code).toBe(0);
    // One request per step: LLaMA-Factory's shape, the default template's prompt (cut at cutoff_len)
    // and the answer in each text.
    expect(requests).toHaveLength(2);
    expect(requests[0].model).toBe('model');
    expect(requests[0].messages).toHaveLength(8);
    for (const message of requests[0].messages) expect(message).toMatch(/^Human: /);
    const log = trainerLog(out);
    expect(log.map((row) => row.current_steps)).toEqual([1, 2]);
    const expectedReward =
      requests[0].messages.reduce((sum, m) => sum + m.split('e').length / (m.length + 1), 0) / 8;
    expect(log[0].reward as number).toBeCloseTo(expectedReward, 4);

    const resumed = await run(out, { resume_from_checkpoint: join(out, 'checkpoint-1') });
    expect(errorLines(resumed.stderr)).toEqual([]);
    expect(resumed.code).toBe(0);
    // The same answers were asked to be scored again for step 2.
    expect(requests.slice(2)).toEqual(requests.slice(1, 2));
    const again = trainerLog(out).map(({ current_steps, loss, reward }) => ({ current_steps, loss, reward }));
    expect(again).toEqual(log.map(({ current_steps, loss, reward }) => ({ current_steps, loss, reward })));
  });

  it('stops with the URL and the status when the server fails', async () => {
    failing = true;
    try {
      const result = await run(join(folder, 'failing'), { max_steps: '1' });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`reward_model ${url}: answered HTTP 500`);
    } finally {
      failing = false;
    }
  });
});
