// `webtune eval predict` and `webtune eval forgetting` end to end on stories260K, in a subprocess.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generationMetrics } from '@webtune/eval';
import { readPredictions } from '@webtune/eval/node';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { adapterFolder } from '../testing/adapter-folder.js';
import { errorLines, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';
const MMLU = 'eval/mmlu_subset';
const STORY_TEXT = 'pretrain/tinystories_sample_cs336.txt';

describe.skipIf(!requireFixtures(STORIES, DATASETS, MMLU, STORY_TEXT))(
  'webtune eval predict and forgetting on stories260K',
  () => {
    const model = fixturePath(STORIES);
    const work = adapterFolder(model, 'webtune-cli-eval-');
    /** `webtune eval forgetting`: the model (base) against it with the adapter (tuned) on a general task. */
    const forgettingArgs = (generalTask: string) => [
      'eval',
      'forgetting',
      '--model',
      model,
      '--adapter',
      work.adapter,
      '--general-task',
      generalTask,
    ];

    it('predict writes prompt / predict / label JSON Lines and scores them with BLEU-4 and ROUGE', async () => {
      const out = join(work.folder, 'predictions', 'generated_predictions.jsonl');
      const result = await webtune([
        'eval',
        'predict',
        '--model',
        model,
        '--adapter',
        work.adapter,
        '--dataset',
        'alpaca_en_demo',
        '--dataset-dir',
        fixturePath(DATASETS),
        '--max-samples',
        '3',
        '--max-new-tokens',
        '8',
        '--out',
        out,
        '--json',
      ]);
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      const lines = readFileSync(out, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(3);
      const first = JSON.parse(lines[0]);
      expect(Object.keys(first).sort()).toEqual(['label', 'predict', 'prompt']);
      // The prompt went through the template: stories260K has no chat_template and none is named, so
      // LLaMA-Factory's choice, `empty`, leaves the instruction (and input) as it is.
      const alpaca = JSON.parse(readFileSync(fixturePath(DATASETS, 'alpaca_en_demo.json'), 'utf8'));
      expect(first.prompt).toBe([alpaca[0].instruction, alpaca[0].input].filter(Boolean).join('\n'));
      expect(first.label).toBe(alpaca[0].output);
      // The printed scores are those of the written records.
      const expected = generationMetrics(await readPredictions(out));
      expect(report).toMatchObject({ samples: 3, out });
      for (const name of ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const) {
        expect(report[name], name).toBeCloseTo(expected[name], 10);
      }
      expect(report.samplesPerSecond).toBeGreaterThan(0);

      // A file path works too; without --json the scores are a table.
      const text = await webtune([
        'eval',
        'predict',
        '--model',
        model,
        '--dataset',
        fixturePath(DATASETS, 'alpaca_zh_demo.json'),
        '--max-samples',
        '2',
        '--max-new-tokens',
        '4',
        '--out',
        join(work.folder, 'zh.jsonl'),
      ]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^metric\s+score\nbleu-4\s+\d+\.\d\d\nrouge-1\s+\d+\.\d\d\nrouge-2/);
      expect(text.stdout).toMatch(/2 samples in .* samples\/s/);
      expect(readFileSync(join(work.folder, 'zh.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    });

    it('predict fails in one line on a missing --out, an unknown dataset and an --out folder', async () => {
      const noOut = await webtune(['eval', 'predict', '--model', model, '--dataset', 'x.json']);
      expect(noOut.code).toBe(2);
      expect(errorLines(noOut.stderr)).toEqual(['webtune eval: --out is required']);
      const unknown = await webtune([
        'eval',
        'predict',
        '--model',
        model,
        '--dataset',
        'nonesuch',
        '--dataset-dir',
        fixturePath(DATASETS),
        '--out',
        join(work.folder, 'x.jsonl'),
      ]);
      expect(unknown.code).toBe(1);
      expect(errorLines(unknown.stderr)).toEqual([
        expect.stringMatching(
          /^webtune eval: .*expected a dataset named in .*dataset_info\.json.*got "nonesuch"$/,
        ),
      ]);
      mkdirSync(join(work.folder, 'a-folder'), { recursive: true });
      const folderOut = await webtune([
        'eval',
        'predict',
        '--model',
        model,
        '--dataset',
        'x.json',
        '--out',
        join(work.folder, 'a-folder'),
      ]);
      expect(folderOut.code).toBe(1);
      expect(errorLines(folderOut.stderr)).toEqual([
        expect.stringMatching(/--out ".*a-folder" is a folder; name the \.jsonl file to write/),
      ]);
    });

    it('forgetting compares base (adapter off) and tuned (adapter on) with a verdict and advice', async () => {
      const storyFile = join(work.folder, 'story.txt');
      writeFileSync(storyFile, readFileSync(fixturePath(STORY_TEXT), 'utf8').slice(0, 1200));
      const args = [
        ...forgettingArgs(fixturePath(MMLU)),
        '--split',
        'val',
        '--n-shot',
        '1',
        '--limit',
        '2',
        '--domain-file',
        storyFile,
        '--domain-dataset',
        'my_stories',
      ];
      const result = await webtune([...args, '--json']);
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(
        report.comparisons.map((c: { name: string; role: string; metric: string }) => [
          c.name,
          c.role,
          c.metric,
        ]),
      ).toEqual([
        ['mmlu_subset', 'general', 'accuracy'],
        ['story.txt', 'domain', 'perplexity'],
      ]);
      const [general, domain] = report.comparisons;
      expect(report.generalChange).toBeCloseTo(general.change, 10);
      expect(report.domainChange).toBeCloseTo(domain.change, 10);
      expect(general.count).toBe(10);
      expect(['improved', 'improved-with-forgetting', 'forgot', 'worse', 'no-change']).toContain(
        report.verdict,
      );
      // The advice comes exactly when general skill fell past the threshold, naming our dataset.
      const forgot = report.generalChange <= -report.thresholds.forgetting;
      expect('advice' in report).toBe(forgot);
      if (forgot) {
        expect(report.advice.config).toBe(
          'dataset: my_stories,alpaca_en_demo\nmix_strategy: interleave_under\ninterleave_probs: 0.9,0.1',
        );
      }
      // Base is the model with the adapter off, tuned with it on: the perplexities of eval perplexity.
      const perplexityOf = async (extra: string[]) => {
        const run = await webtune([
          'eval',
          'perplexity',
          '--model',
          model,
          ...extra,
          '--file',
          storyFile,
          '--json',
        ]);
        expect(run.code).toBe(0);
        return JSON.parse(run.stdout).perplexity as number;
      };
      const relative = (a: number, b: number) => Math.abs(a - b) / b;
      expect(relative(domain.base, await perplexityOf([]))).toBeLessThan(1e-5);
      expect(relative(domain.tuned, await perplexityOf(['--adapter', work.adapter]))).toBeLessThan(1e-5);
      expect(domain.tuned).not.toBeCloseTo(domain.base, 1);

      // Markdown by default; a zero threshold makes any general drop count, with the config block.
      const text = await webtune([...args, '--forgetting-threshold', '0']);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/^# Forgetting report\n/);
      expect(text.stdout).toMatch(/\| mmlu_subset \| general \| accuracy \|/);
      expect(text.stdout).toMatch(/\*\*Verdict: [a-z-]+\.\*\*/);
      if (report.generalChange <= 0) {
        expect(text.stdout).toContain('```yaml\ndataset: my_stories,alpaca_en_demo\n');
      }
    });

    it('forgetting fails in one line without a domain set or with a missing task folder', async () => {
      const noDomain = await webtune(forgettingArgs(fixturePath(MMLU)));
      expect(noDomain.code).toBe(2);
      expect(errorLines(noDomain.stderr)).toEqual([
        'webtune eval: name the domain set: --domain-task DIR (multiple choice) or --domain-file TEXT (perplexity)',
      ]);
      const noAdapter = await webtune(['eval', 'forgetting', '--model', model]);
      expect(noAdapter.code).toBe(2);
      expect(errorLines(noAdapter.stderr)).toEqual([
        'webtune eval: --adapter is required: base (adapter off) is compared with tuned (adapter on)',
      ]);
      const missing = await webtune([
        ...forgettingArgs(join(work.folder, 'none')),
        '--domain-task',
        fixturePath(MMLU),
      ]);
      expect(missing.code).toBe(1);
      expect(errorLines(missing.stderr)).toEqual([
        expect.stringMatching(/general task folder ".*none" does not exist/),
      ]);
    });
  },
);
