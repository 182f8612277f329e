// `webtune eval ab` end to end on stories260K: votes piped on standard input, the sides revealed,
// and the voted pairs exported as a preference dataset that DPO training reads.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadExamplesFromDirectory } from '@webtune/data/node';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { adapterFolder } from '../testing/adapter-folder.js';
import { comparisonArgs, errorLines, trainExample, trainerLog, webtune } from '../testing/run-cli.js';
import { printable } from '../ui.js';

const STORIES = 'models/stories260K-hf';

interface SavedSession {
  models: [string, string];
  session: { seed: number; order: number[]; swapped: boolean[] };
  pairs: { id: number; prompt: string; answers: Record<string, string> }[];
  items: {
    position: number;
    pairId: number;
    shownAs: { A: string; B: string };
    vote: 'A' | 'B' | 'tie';
    winner: string;
  }[];
  summary: {
    total: number;
    wins: [number, number];
    ties: number;
    winRate: number;
    interval: [number, number];
  };
  skipped: number;
}

/** An answer as the session prints it. */
function shown(text: string): string {
  if (text.trim().length === 0) return '(empty answer)';
  return text
    .split('\n')
    .map((line) => printable(line))
    .join('\n    ');
}

describe.skipIf(!requireFixtures(STORIES))('webtune eval ab on stories260K', () => {
  const model = fixturePath(STORIES);
  const work = adapterFolder(model, 'webtune-cli-ab-');
  let prompts: string;

  beforeAll(() => {
    prompts = join(work.folder, 'prompts.txt');
    writeFileSync(
      prompts,
      'Once upon a time\nTell me about a dog\n\nWhat is the sun?\nLily went to the park\n',
    );
  });

  it('shows shuffled pairs, reads piped votes, unblinds, saves and exports a DPO dataset', async () => {
    const save = join(work.folder, 'session.json');
    const data = join(work.folder, 'data');
    const ab = [
      ...comparisonArgs('ab', model, work.adapter, prompts),
      '--max-new-tokens',
      '8',
      '--seed',
      '11',
      '--save',
      save,
      '--export-dataset',
      data,
      '--dataset-name',
      'voted',
    ];
    // a, something unreadable (asked again), b, t; the input ends before the fourth pair.
    const result = await webtune(ab, { input: 'a\nmaybe\nb\nt\n' });
    expect(errorLines(result.stderr)).toEqual([]);
    expect(result.code).toBe(0);
    for (const position of [1, 2, 3, 4]) expect(result.stdout).toContain(`── ${position} of 4 `);
    expect(result.stdout.match(/^\[A\] /gm)).toHaveLength(4);
    expect(result.stdout.match(/^\[B\] /gm)).toHaveLength(4);
    expect(result.stdout).toContain('type a, b or t (tie); s skips this pair, q ends the session');

    const saved: SavedSession = JSON.parse(readFileSync(save, 'utf8'));
    expect(saved.models).toEqual(['base', 'tuned']);
    expect(saved.session.seed).toBe(11);
    expect([...saved.session.order].sort()).toEqual([0, 1, 2, 3]);
    expect(saved.pairs.map((pair) => pair.prompt)).toEqual([
      'Once upon a time',
      'Tell me about a dog',
      'What is the sun?',
      'Lily went to the park',
    ]);
    // The votes map back through the sides each pair was shown on.
    expect(saved.items.map((item) => item.vote)).toEqual(['A', 'B', 'tie']);
    expect(saved.skipped).toBe(1);
    for (const [index, item] of saved.items.entries()) {
      expect(item.position).toBe(index + 1);
      expect(item.pairId).toBe(saved.session.order[index]);
      const swapped = saved.session.swapped[index];
      expect(item.shownAs).toEqual(swapped ? { A: 'tuned', B: 'base' } : { A: 'base', B: 'tuned' });
      expect(item.winner).toBe(item.vote === 'tie' ? 'tie' : item.shownAs[item.vote]);
      // The pair was shown with that model's answer as A and the other's as B.
      const pair = saved.pairs[item.pairId];
      expect(result.stdout).toContain(
        `prompt ${pair.prompt}\n\n[A] ${shown(pair.answers[item.shownAs.A])}\n\n[B] ${shown(pair.answers[item.shownAs.B])}\n`,
      );
    }
    const wins = (name: string) => saved.items.filter((item) => item.winner === name).length;
    expect(saved.summary.total).toBe(3);
    expect(saved.summary.wins).toEqual([wins('base'), wins('tuned')]);
    expect(saved.summary.ties).toBe(1);
    expect(result.stdout).toContain(
      `base wins ${wins('base')}, tuned wins ${wins('tuned')}, ties 1 (3 voted, 1 skipped)`,
    );
    const winRate = (((wins('tuned') + 0.5) / 3) * 100).toFixed(1);
    expect(saved.summary.winRate).toBeCloseTo((wins('tuned') + 0.5) / 3, 10);
    expect(result.stdout).toContain(`tuned vs base: win rate ${winRate}% (95% CI `);

    // Two decided pairs export as sharegpt chosen / rejected, which stage dpo loads...
    expect(result.stdout).toContain(`exported 2 preference pairs to ${data} as dataset "voted"`);
    const info = JSON.parse(readFileSync(join(data, 'dataset_info.json'), 'utf8'));
    expect(info.voted).toMatchObject({ file_name: 'voted.json', formatting: 'sharegpt', ranking: true });
    const loaded = await loadExamplesFromDirectory({ datasetDir: data, datasets: ['voted'], stage: 'dpo' });
    expect(loaded.report.rejected).toEqual([]);
    expect(loaded.train).toHaveLength(2);
    const decided = saved.items.filter((item) => item.winner !== 'tie');
    for (const [index, example] of loaded.train.entries()) {
      expect(example.kind).toBe('preference');
      if (example.kind !== 'preference') continue;
      const pair = saved.pairs[decided[index].pairId];
      const loser = decided[index].winner === 'base' ? 'tuned' : 'base';
      expect(example.conversation.turns).toEqual([{ role: 'user', content: pair.prompt }]);
      expect(example.chosen.content).toBe(pair.answers[decided[index].winner]);
      expect(example.rejected.content).toBe(pair.answers[loser]);
    }
    // ...and `webtune train` with stage: dpo trains on.
    const out = join(work.folder, 'dpo');
    const train = await trainExample(model, out, {
      stage: 'dpo',
      dataset: 'voted',
      dataset_dir: data,
      template: 'default',
      do_predict: 'false',
      max_steps: '1',
      logging_steps: '1',
      per_device_train_batch_size: '2',
      gradient_accumulation_steps: '1',
    });
    expect(errorLines(train.stderr)).toEqual([]);
    expect(train.code).toBe(0);
    const [log] = trainerLog(out);
    expect(typeof log['rewards/chosen']).toBe('number');
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
  });

  it('q ends the session at once: nothing to unblind, nothing exported', async () => {
    const data = join(work.folder, 'quit-data');
    const result = await webtune(
      [
        ...comparisonArgs('ab', model, work.adapter, prompts),
        '--max-samples',
        '2',
        '--max-new-tokens',
        '4',
        '--export-dataset',
        data,
      ],
      { input: 'q\n' },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('── 1 of 2 ');
    expect(result.stdout).not.toContain('── 2 of 2 ');
    expect(result.stdout).toContain('no votes: nothing to unblind (2 skipped)');
    expect(result.stdout).toContain('nothing exported: no pair has a winner');
    expect(existsSync(data)).toBe(false);
  });

  it('--help shows every eval task with examples', async () => {
    const help = await webtune(['eval', 'ab', '--help']);
    expect(help.code).toBe(0);
    for (const task of ['perplexity', 'mcq', 'predict', 'ab', 'judge', 'forgetting']) {
      expect(help.stdout).toMatch(new RegExp(`^  webtune eval ${task} `, 'm'));
    }
  });

  it('fails in one line without an adapter, with a missing or malformed prompts file', async () => {
    const noAdapter = await webtune(['eval', 'ab', '--model', model, '--prompts', prompts]);
    expect(noAdapter.code).toBe(2);
    expect(errorLines(noAdapter.stderr)).toEqual([
      'webtune eval: --adapter is required: base (adapter off) is compared with tuned (adapter on)',
    ]);
    const missing = await webtune([
      ...comparisonArgs('ab', model, work.adapter, join(work.folder, 'none.txt')),
    ]);
    expect(missing.code).toBe(1);
    expect(errorLines(missing.stderr)).toEqual([
      expect.stringMatching(/--prompts ".*none\.txt" does not exist/),
    ]);
    const bad = join(work.folder, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "fine"}\n{"prompt": 7}\n');
    const malformed = await webtune(comparisonArgs('ab', model, work.adapter, bad));
    expect(malformed.code).toBe(1);
    expect(errorLines(malformed.stderr)).toEqual([
      expect.stringMatching(/^webtune eval: .*bad\.jsonl:2: expected a string, \{"prompt"\}/),
    ]);
  });
});
