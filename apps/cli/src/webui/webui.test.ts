import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCli, startCli, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';

/** Reads a run's server-sent events until `end`. */
async function events(url: string): Promise<{ type: string; data: unknown; id: number }[]> {
  const response = await fetch(url);
  expect(response.headers.get('content-type')).toBe('text/event-stream');
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim() && !block.startsWith(':'))
    .map((block) => {
      const fields = Object.fromEntries(
        block
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      );
      return { type: fields.event, data: JSON.parse(fields.data), id: Number(fields.id) };
    });
}

describe.skipIf(!requireFixtures(STORIES, DATASETS))('webtune webui', () => {
  let folder: string;
  let server: RunningCli;
  let base: string;
  const post = (
    path: string,
    body: unknown,
    headers: Record<string, string> = { 'Content-Type': 'application/json' },
  ) => fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const config = (out: string, extra: Record<string, unknown> = {}) => ({
    model_name_or_path: fixturePath(STORIES),
    dataset: 'identity',
    dataset_dir: fixturePath(DATASETS),
    template: 'default',
    cutoff_len: 48,
    max_samples: 8,
    per_device_train_batch_size: 4,
    max_steps: 3,
    logging_steps: 1,
    output_dir: out,
    run_name: 'from the board',
    ...extra,
  });

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-webui-'));
    mkdirSync(join(folder, 'app'));
    writeFileSync(join(folder, 'app/index.html'), '<!doctype html><title>board</title>');
    server = startCli([
      'webui',
      '--port',
      '0',
      '--app',
      join(folder, 'app'),
      '--output-root',
      join(folder, 'runs'),
    ]);
    base = `http://127.0.0.1:${(await server.waitFor(/http:\/\/127\.0\.0\.1:(\d+)/))[1]}`;
  });
  afterAll(async () => {
    server.child.kill('SIGINT');
    expect((await server.exited).code).toBe(0);
    rmSync(folder, { recursive: true, force: true });
  });

  it('serves the app and reports the device', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('<title>board</title>');
    expect((await fetch(`${base}/../../etc/passwd`)).status).toBe(404);
    const info = await (await fetch(`${base}/api/info`)).json();
    expect(info).toMatchObject({ name: 'webtune', run: null });
    expect(info.device.backend).toBe('dawn-node');
  });

  it('runs training from LLaMA-Factory keys and streams its events and log', async () => {
    const started = await post('/api/runs', { config: config(join(folder, 'runs', 'run1')) });
    expect(started.status).toBe(201);
    const { id } = await started.json();
    const stream = await events(`${base}/api/runs/${id}/events`);
    const trainer = stream
      .filter((e) => e.type === 'trainer')
      .map((e) => e.data as { type: string; step?: number });
    expect(trainer[0].type).toBe('train-start');
    expect(trainer.filter((e) => e.type === 'step-end').map((e) => e.step)).toEqual([1, 2, 3]);
    expect(trainer.at(-1)!.type).toBe('train-end');
    expect(
      stream.some((e) => e.type === 'log' && /note: run_name/.test((e.data as { line: string }).line)),
    ).toBe(true);
    expect(stream.at(-1)).toMatchObject({ type: 'end', data: { status: 'completed' } });
    expect(stream.map((e) => e.id)).toEqual(stream.map((_, i) => i + 1));
    // Replayed after Last-Event-ID.
    const replay = await fetch(`${base}/api/runs/${id}/events`, {
      headers: { 'Last-Event-ID': String(stream.length - 1) },
    });
    expect((await replay.text()).match(/^event: /gm)).toHaveLength(1);
    const status = await (await fetch(`${base}/api/runs/${id}`)).json();
    expect(status).toMatchObject({ id, status: 'completed', outputDir: join(folder, 'runs', 'run1') });
    const info = await (await fetch(`${base}/api/info`)).json();
    expect(info.run).toEqual({ id, status: 'completed' });
  });

  it('stops a run at a step boundary with a checkpoint', async () => {
    const { id } = await (
      await post('/api/runs', { config: config(join(folder, 'runs', 'run2'), { max_steps: 200 }) })
    ).json();
    const busy = await post('/api/runs', { config: config(join(folder, 'runs', 'run3')) });
    expect(busy.status).toBe(409);
    expect((await busy.json()).error).toMatch(/still running/);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await post(`/api/runs/${id}/stop`, {})).status).toBe(200);
    const stream = await events(`${base}/api/runs/${id}/events`);
    expect(stream.at(-1)).toMatchObject({ type: 'end', data: { status: 'stopped' } });
    expect(
      stream.some((e) => e.type === 'trainer' && (e.data as { type: string }).type === 'checkpoint-saved'),
    ).toBe(true);
  });

  it('answers bad requests with JSON errors and refuses other origins and hosts', async () => {
    const unknown = await post('/api/runs', {
      config: { ...config(join(folder, 'runs', 'run4')), lerning_rate: 1 },
    });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error).toMatch(/did you mean "learning_rate"/);
    const failing = await post('/api/runs', {
      config: config(join(folder, 'runs', 'run5'), { model_name_or_path: join(folder, 'none') }),
    });
    const { id } = await failing.json();
    const end = (await events(`${base}/api/runs/${id}/events`)).at(-1);
    expect(end).toMatchObject({
      type: 'end',
      data: { status: 'failed', error: expect.stringMatching(/does not exist/) },
    });
    expect((await post('/api/runs', {}, { 'Content-Type': 'text/plain' })).status).toBe(415);
    expect((await post('/api/runs', {})).status).toBe(400);
    expect((await fetch(`${base}/api/runs/nope/events`)).status).toBe(404);
    const crossOrigin = await post(
      '/api/runs',
      { config: config(join(folder, 'runs', 'run6')) },
      { 'Content-Type': 'application/json', Origin: 'https://evil.example' },
    );
    expect(crossOrigin.status).toBe(403);
    expect(crossOrigin.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('says in one line when the app is not built', async () => {
    const result = await webtune(['webui', '--app', join(folder, 'empty')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the web app is not built/);
  });
});
