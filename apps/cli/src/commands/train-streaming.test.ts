import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, trainerLog, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(STORIES))('webtune train: streaming: true', () => {
  let folder: string;
  const rows = 5000;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-cli-streaming-'));
    const lines = Array.from({ length: rows }, (_, i) =>
      i === 3
        ? '{"instruction": "broken", "output": '
        : JSON.stringify({ instruction: `fact ${i}?`, output: `answer ${i}` }),
    );
    writeFileSync(join(folder, 'big.jsonl'), `${lines.join('\n')}\n`);
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  // A LLaMA-Factory config as a user would write it, with key=value overrides after it.
  const run = (out: string, overrides: Record<string, string> = {}) => {
    const config = join(folder, 'streaming.yaml');
    writeFileSync(
      config,
      [
        `model_name_or_path: ${fixturePath(STORIES)}`,
        'stage: sft',
        'finetuning_type: lora',
        `dataset_dir: ${folder}`,
        'dataset: big.jsonl',
        'template: default',
        'cutoff_len: 64',
        'streaming: true',
        'buffer_size: 16',
        'max_steps: 4',
        'save_steps: 2',
        'logging_steps: 1',
        'per_device_train_batch_size: 2',
        'learning_rate: 1.0e-3',
        'overwrite_output_dir: true',
      ].join('\n'),
    );
    const settings = { output_dir: out, ...overrides };
    return webtune(['train', config, ...Object.entries(settings).map(([key, value]) => `${key}=${value}`)]);
  };

  it('trains from a stream, names the bad row, and a resume from checkpoint-2 repeats steps 3-4 exactly', async () => {
    const out = join(folder, 'out');
    const result = await run(out);
    expect(errorLines(result.stderr)).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/streaming big\.jsonl \(buffer_size 16, concat\)/);
    expect(result.stdout).toMatch(/row rejected: .*big\.jsonl.*row 4/);
    expect(result.stdout).toMatch(/training: 4 steps rows streamed/);
    // The buffer's 16 rows, the step's rows and one of look-ahead were read; far from the 5000.
    const read = Number(/data: big\.jsonl \(alpaca\): (\d+) rows read, 1 rejected/.exec(result.stdout)?.[1]);
    expect(read).toBeGreaterThan(16);
    expect(read).toBeLessThan(40);
    const reference = trainerLog(out).map((row) => row.loss);
    expect(reference).toHaveLength(4);
    expect(readdirSync(out)).toEqual(expect.arrayContaining(['checkpoint-2', 'checkpoint-4']));

    const resumed = await run(out, { resume_from_checkpoint: join(out, 'checkpoint-2') });
    expect(errorLines(resumed.stderr)).toEqual([]);
    expect(resumed.code).toBe(0);
    expect(trainerLog(out).map((row) => row.loss)).toEqual(reference);
  });

  it("refuses streaming without max_steps, with LLaMA-Factory's message", async () => {
    const result = await run(join(folder, 'refused'), { max_steps: '-1' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/please specify max_steps in streaming mode/);
  });
});
