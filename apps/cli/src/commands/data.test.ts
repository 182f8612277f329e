import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';

describe.skipIf(!requireFixtures(STORIES, DATASETS))('webtune data', () => {
  const model = fixturePath(STORIES);
  const datasetDir = fixturePath(DATASETS);
  let folder: string;
  let bad: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-cli-data-'));
    bad = join(folder, 'bad.jsonl');
    writeFileSync(
      bad,
      [
        '{"instruction":"hi","output":"hello"}',
        '{"instruction":"x"}',
        '{"instruction":3,"output":"a"}',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('validate passes a clean dataset by name and exits 0', async () => {
    const result = await webtune(['data', 'validate', 'alpaca_en_demo', '--dataset-dir', datasetDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /alpaca_en_demo \(alpaca_en_demo.json, alpaca\): \d+ rows read, \d+ kept, 0 rejected/,
    );
    expect(result.stdout).toMatch(/ok: every row is usable/);
  });

  it('validate names each rejected row and exits 1 with a one-line reason', async () => {
    const result = await webtune(['data', 'validate', bad]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/row 2 \(line 2\), field "output": expected a string, got nothing/);
    expect(result.stdout).toMatch(
      /row 3 \(line 3\), field "instruction": expected a string, got a number \(3\)/,
    );
    expect(errorLines(result.stderr)).toEqual([
      expect.stringMatching(/^webtune data: 2 row\(s\) rejected; the first: .*row 2/),
    ]);
    const json = await webtune(['data', 'validate', bad, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).rejected).toHaveLength(2);
  });

  it('preview shows conversations, or trained tokens between ⟦ ⟧ with a model', async () => {
    const plain = await webtune([
      'data',
      'preview',
      'identity',
      '--dataset-dir',
      datasetDir,
      '--count',
      '1',
      '--placeholder',
      'name=Zorbik',
    ]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/── identity row 1 \(supervised\)\nuser: hi\nassistant: Hello! I am Zorbik/);
    const tokens = await webtune(['data', 'preview', bad, '--model', model, '--template', 'default']);
    expect(tokens.code).toBe(0);
    // LLaMA-Factory's default template: EOS after the user text and the answer, each piece tokenized
    // on its own (the SentencePiece tokenizer starts each with a space).
    expect(tokens.stdout).toContain('Human: hi</s> \nAssistant:⟦hello</s> \n⟧');
  });

  it('stats --json measures token lengths against cutoff_len', async () => {
    const result = await webtune([
      'data',
      'stats',
      'alpaca_en_demo',
      '--dataset-dir',
      datasetDir,
      '--model',
      model,
      '--template',
      'default',
      '--cutoff-len',
      '256',
      '--max-samples',
      '50',
      '--json',
    ]);
    expect(result.code).toBe(0);
    const stats = JSON.parse(result.stdout);
    expect(stats.tokens.examples).toBe(50);
    expect(stats.tokens.cutoffLen).toBe(256);
    expect(stats.tokens.truncated).toBeGreaterThan(0);
    expect(stats.tokens.max).toBeGreaterThan(256);
  });

  it('gives one-line errors for missing files, unknown names and bad options', async () => {
    const missing = await webtune(['data', 'validate', join(folder, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(errorLines(missing.stderr)).toEqual([
      expect.stringMatching(/dataset ".*nope.json" does not exist/),
    ]);
    const unknown = await webtune(['data', 'validate', 'no_such_set', '--dataset-dir', datasetDir]);
    expect(unknown.code).toBe(1);
    expect(errorLines(unknown.stderr)).toHaveLength(1);
    expect(unknown.stderr).toMatch(/no_such_set/);
    const formatting = await webtune(['data', 'validate', bad, '--formatting', 'markdown']);
    expect(formatting.code).toBe(2);
    expect(errorLines(formatting.stderr)).toEqual([
      expect.stringMatching(/--formatting must be one of alpaca, sharegpt, openai, v1/),
    ]);
    const action = await webtune(['data', 'check', bad]);
    expect(action.code).toBe(2);
    expect(errorLines(action.stderr)).toEqual([expect.stringMatching(/unknown data action "check"/)]);
    const notJson = join(folder, 'broken.json');
    writeFileSync(notJson, '[{"instruction": "a", "output": ');
    const broken = await webtune(['data', 'validate', notJson]);
    expect(broken.code).toBe(1);
    expect(errorLines(broken.stderr)).toHaveLength(1);
  });
});
