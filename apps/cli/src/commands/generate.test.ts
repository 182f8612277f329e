import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { perplexity } from '@webtune/nn';
import { loadModelDirectory } from '@webtune/nn/node';
import { createDevice } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { adapterFolder } from '../testing/adapter-folder.js';
import { errorLines, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const EXPECTED = 'models/stories260K-llama2c/expected_greedy_200.txt';
const MMLU = 'eval/mmlu_subset';

describe.skipIf(!requireFixtures(STORIES, EXPECTED, MMLU))(
  'generate and eval perplexity on stories260K',
  () => {
    const model = fixturePath(STORIES);
    const work = adapterFolder(model, 'webtune-cli-generate-');
    /** The first 1,500 characters of the TinyStories sample, written to `name` in the work folder. */
    const storySample = (name: string) => {
      const text = readFileSync(fixturePath('pretrain/tinystories_sample_cs336.txt'), 'utf8').slice(0, 1500);
      const file = join(work.folder, name);
      writeFileSync(file, text);
      return { text, file };
    };
    /** `webtune eval perplexity --json` on a file of the model. */
    const perplexityJson = (file: string, ...extra: string[]) =>
      webtune(['eval', 'perplexity', '--model', model, '--file', file, '--json', ...extra]);

    it('prints the greedy completion only, as upstream llama2.c decodes it', async () => {
      const result = await webtune([
        'generate',
        '--model',
        model,
        '--prompt',
        'Once upon a time',
        '--max-new-tokens',
        '40',
      ]);
      expect(result.code).toBe(0);
      const expected = readFileSync(fixturePath(EXPECTED), 'utf8');
      const completion = result.stdout.replace(/\n$/, '');
      expect(completion.length).toBeGreaterThan(100);
      expect(expected.startsWith(`Once upon a time${completion}`)).toBe(true);
    });

    it('applies an adapter, a chat template, sampling with a seed, and reads the prompt from stdin', async () => {
      const tuned = await webtune([
        'generate',
        '--model',
        model,
        '--adapter',
        work.adapter,
        '--prompt',
        'Once upon a time',
        '--max-new-tokens',
        '12',
      ]);
      expect(tuned.code).toBe(0);
      expect(tuned.stdout).not.toBe(', there was a little girl named Lily.\n');
      const sampled = [
        'generate',
        '--model',
        model,
        '--prompt',
        '-',
        '--temperature',
        '1',
        '--seed',
        '7',
        '--max-new-tokens',
        '12',
        '--template',
        'default',
      ];
      const first = await webtune(sampled, { input: 'Tell me a story\n' });
      const second = await webtune(sampled, { input: 'Tell me a story\n' });
      expect(first.code).toBe(0);
      expect(first.stdout).toBe(second.stdout);
    });

    it('fails in one line on a missing model, a missing --prompt and a bad number', async () => {
      const missing = await webtune(['generate', '--model', join(work.folder, 'nope'), '--prompt', 'x']);
      expect(missing.code).toBe(1);
      expect(errorLines(missing.stderr)).toEqual([
        expect.stringMatching(/model folder ".*nope" does not exist/),
      ]);
      const noPrompt = await webtune(['generate', '--model', model]);
      expect(noPrompt.code).toBe(2);
      expect(errorLines(noPrompt.stderr)).toEqual(['webtune generate: --prompt is required']);
      const badNumber = await webtune([
        'generate',
        '--model',
        model,
        '--prompt',
        'x',
        '--max-new-tokens',
        'many',
      ]);
      expect(badNumber.code).toBe(2);
      expect(errorLines(badNumber.stderr)).toEqual([
        'webtune generate: --max-new-tokens must be an integer, got "many"',
      ]);
      const badTemplate = await webtune([
        'generate',
        '--model',
        model,
        '--prompt',
        'x',
        '--template',
        'nonesuch',
      ]);
      expect(badTemplate.code).toBe(2);
      expect(errorLines(badTemplate.stderr)).toEqual([
        expect.stringMatching(/unknown template "nonesuch"; templates: alpaca, /),
      ]);
    });

    it('--quantization-bit runs generate and eval perplexity on a Q8_0 / Q4_0 base, and rejects other widths', async () => {
      const { file } = storySample('quantized-sample.txt');
      const nll = async (extra: string[]) => {
        const result = await perplexityJson(file, ...extra);
        expect(result.code).toBe(0);
        return JSON.parse(result.stdout).nll as number;
      };
      const f32 = await nll([]);
      const q8 = await nll(['--quantization-bit', '8']);
      const q4 = await nll(['--quantization-bit', '4']);
      expect(q8).not.toBe(f32);
      expect(Math.abs(q8 - f32)).toBeLessThan(0.02);
      expect(Math.abs(q4 - f32)).toBeLessThan(0.15);
      const generated = await webtune([
        'generate',
        '--model',
        model,
        '--prompt',
        'Once upon a time',
        '--max-new-tokens',
        '8',
        '--quantization-bit',
        '4',
      ]);
      expect(generated.code).toBe(0);
      expect(generated.stdout.length).toBeGreaterThan(8);
      const bad = await webtune(['generate', '--model', model, '--prompt', 'x', '--quantization-bit', '3']);
      expect(bad.code).toBe(2);
      expect(errorLines(bad.stderr)).toEqual([
        expect.stringMatching(/--quantization-bit must be 8 or 4, got "3"/),
      ]);
    });

    it("eval perplexity --json prints the nn package's perplexity, NLL and token count", async () => {
      const { text, file } = storySample('sample.txt');
      const result = await perplexityJson(file, '--window', '256');
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(Object.keys(report)).toEqual(['perplexity', 'nll', 'tokens']);
      const device = await createDevice();
      try {
        const { model: reference, tokenizer } = await loadModelDirectory(device, model);
        const expected = await perplexity(reference, tokenizer!, text, { window: 256 });
        expect(report.tokens).toBe(expected.tokens);
        expect(report.nll).toBeCloseTo(expected.meanLoss, 5);
        expect(report.perplexity).toBeCloseTo(expected.perplexity, 4);
      } finally {
        device.destroy();
      }
      const tuned = await perplexityJson(file, '--adapter', work.adapter, '--window', '256');
      expect(JSON.parse(tuned.stdout).perplexity).not.toBeCloseTo(report.perplexity, 2);
      const missing = await webtune([
        'eval',
        'perplexity',
        '--model',
        model,
        '--file',
        join(work.folder, 'none.txt'),
      ]);
      expect(missing.code).toBe(1);
      expect(errorLines(missing.stderr)).toEqual([
        expect.stringMatching(/--file ".*none.txt" does not exist/),
      ]);
      const task = await webtune(['eval', 'mmlu']);
      expect(task.code).toBe(2);
      expect(errorLines(task.stderr)).toEqual([
        expect.stringMatching(/unknown eval task "mmlu"; available: perplexity/),
      ]);
    });

    it('eval mcq scores a multiple-choice task folder through @webtune/eval', async () => {
      const save = join(work.folder, 'mcq');
      const result = await webtune([
        'eval',
        'mcq',
        '--task',
        fixturePath(MMLU),
        '--split',
        'val',
        '--n-shot',
        '1',
        '--limit',
        '2',
        '--model',
        model,
        '--json',
        '--save',
        save,
      ]);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(report).toMatchObject({ task: 'mmlu_subset', split: 'val', nShot: 1 });
      expect(report.overall.questions).toBe(2 * report.subjects.length);
      expect(report.overall.accuracy).toBeGreaterThanOrEqual(0);
      expect(readFileSync(join(save, 'results.md'), 'utf8')).toMatch(/^# mmlu_subset/);
      const missing = await webtune(['eval', 'mcq', '--task', join(work.folder, 'none'), '--model', model]);
      expect(missing.code).toBe(1);
      expect(errorLines(missing.stderr)).toEqual([
        expect.stringMatching(/task folder ".*none" does not exist/),
      ]);
    });
  },
);
