import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath, fixturesRoot, optionalFixtures, requireFixtures } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Stage } from '../formats/types.js';
import { DataError, type DataIssue } from '../issues.js';
import { loadExamplesFromDirectory, prepareDatasetFromDirectory } from '../node.js';
import { localDatasetNames, parseDatasetInfo, resolveDatasetAttributes } from '../registry/dataset-info.js';
import { formatValidationReport } from '../report/validation-report.js';
import { toyQwenTokenizer } from '../test-support/toy-tokenizer.js';
import { IGNORE_INDEX } from '../tokenize/tokenizer-like.js';
import { memoryFileResolver } from './file-resolver.js';
import { loadExamples, NoValidRowsError } from './load-examples.js';
import { prepareDataset } from './prepare.js';

const LLAMAFACTORY = 'datasets/llamafactory';

/** The stage a dataset_info entry is meant for. */
function stageOf(attributes: ReturnType<typeof resolveDatasetAttributes>): Stage {
  if (attributes.ranking) return 'dpo';
  if (attributes.columns.kto_tag) return 'kto';
  if (attributes.columns.prompt === 'text') return 'pt';
  return 'sft';
}

// fixtures/datasets/llamafactory: LLaMA-Factory's identity.json and v1_dpo_demo.jsonl, and webtune's own
// files in the formats of the other demos (tools/fixtures/generate.mjs; see fixtures/PROVENANCE.md).
const ROWS: Record<string, number> = {
  identity: 91,
  alpaca_en_demo: 120,
  alpaca_zh_demo: 120,
  glaive_toolcall_en_demo: 60,
  glaive_toolcall_zh_demo: 60,
  dpo_en_demo: 100,
  dpo_zh_demo: 60,
  kto_en_demo: 60,
  wiki_demo: 30,
  c4_demo: 60,
};

/** Loads every dataset of `info` that has a file in `datasetDir`, checking that all `rows[name]` rows are kept. */
async function expectEveryDatasetLoads(
  datasetDir: string,
  info: ReturnType<typeof parseDatasetInfo>,
  rows: Record<string, number>,
): Promise<void> {
  const present = localDatasetNames(info).filter((name) =>
    existsSync(join(datasetDir, resolveDatasetAttributes(info, name).location)),
  );
  expect(present.sort()).toEqual(Object.keys(rows).sort());
  for (const name of present) {
    const stage = stageOf(resolveDatasetAttributes(info, name));
    const loaded = await loadExamplesFromDirectory({
      datasetDir,
      datasets: [name],
      stage,
      placeholders: { name: 'Webtune', author: 'us' },
    });
    expect(loaded.report.rejected, name).toEqual([]);
    expect(loaded.report.datasets[0], name).toMatchObject({
      rowsRead: rows[name],
      rowsKept: rows[name],
      rowsRejected: 0,
    });
    expect(loaded.train, name).toHaveLength(rows[name]);
    const kind = { pt: 'pretrain', sft: 'supervised', dpo: 'preference', kto: 'kto', rm: 'preference' }[
      stage
    ];
    expect(
      loaded.train.every((example) => example.kind === kind),
      name,
    ).toBe(true);
  }
}

/** The upstream demo files (not redistributable, so outside the repository), where a machine has them. */
const UPSTREAM_ROWS: Record<string, number> = {
  identity: 91,
  alpaca_en_demo: 999,
  alpaca_zh_demo: 1000,
  glaive_toolcall_en_demo: 300,
  glaive_toolcall_zh_demo: 300,
  dpo_en_demo: 300,
  dpo_zh_demo: 300,
  kto_en_demo: 300,
  wiki_demo: 30,
  c4_demo: 300,
};

describe.skipIf(!optionalFixtures(`${LLAMAFACTORY}/alpaca_en_demo.json`, `${LLAMAFACTORY}/dpo_en_demo.json`))(
  "LLaMA-Factory's own demo datasets (optional: $WEBTUNE_FIXTURES or ../shared/fixtures)",
  () => {
    it('every dataset with a local file loads by name for its stage, with every row kept', async () => {
      const datasetDir = join(fixturesRoot(), LLAMAFACTORY);
      const info = parseDatasetInfo(readFileSync(join(datasetDir, 'dataset_info.json'), 'utf8'));
      await expectEveryDatasetLoads(datasetDir, info, UPSTREAM_ROWS);
    }, 60_000);
  },
);

describe.skipIf(
  !requireFixtures(`${LLAMAFACTORY}/dataset_info.json`, 'chat_templates/Qwen-Qwen3-0.6B.jinja'),
)('the LLaMA-Factory demo datasets', () => {
  const datasetDir = fixturePath(LLAMAFACTORY);
  let info: ReturnType<typeof parseDatasetInfo>;
  let qwen3: string;
  beforeAll(() => {
    info = parseDatasetInfo(readFileSync(fixturePath(LLAMAFACTORY, 'dataset_info.json'), 'utf8'));
    qwen3 = readFileSync(fixturePath('chat_templates/Qwen-Qwen3-0.6B.jinja'), 'utf8');
  });

  it('every dataset with a local file loads by name for its stage, with every row kept', async () => {
    await expectEveryDatasetLoads(datasetDir, info, ROWS);
  });

  it('a dataset named without a local file says so', async () => {
    await expect(
      loadExamplesFromDirectory({ datasetDir, datasets: ['mllm_demo'], stage: 'sft' }),
    ).rejects.toThrow(
      /mllm_demo: mllm_demo.json, field "\(file\)": expected a readable file, got no such file/,
    );
    await expect(
      loadExamplesFromDirectory({ datasetDir, datasets: ['alpaca_en'], stage: 'sft' }),
    ).rejects.toThrow(
      /field "alpaca_en.file_name": expected a local file .*, got hf_hub llamafactory\/alpaca_en/,
    );
    await expect(
      loadExamplesFromDirectory({ datasetDir, datasets: ['dpo_en_demo'], stage: 'sft' }),
    ).rejects.toThrow(/expected a dataset without preference pairs for stage sft/);
  });

  it('encodes the Chinese and tool-call datasets through the Qwen3 template, with prompt tokens masked', async () => {
    const prepared = await prepareDatasetFromDirectory({
      datasetDir,
      datasets: ['alpaca_zh_demo', 'glaive_toolcall_zh_demo'],
      stage: 'sft',
      tokenizer: toyQwenTokenizer(qwen3),
      cutoffLen: 4096,
      maxSamples: 50,
    });
    expect(prepared.train).toHaveLength(100);
    expect(prepared.report.rejected).toEqual([]);
    for (const example of prepared.train) {
      if (example.kind !== 'supervised') throw new Error('expected SFT examples');
      const trained = Array.from(example.labels).filter((label) => label !== IGNORE_INDEX).length;
      expect(trained).toBeGreaterThan(0);
      expect(trained).toBeLessThan(example.labels.length);
    }
    const text = formatValidationReport(prepared.report);
    expect(text).toContain(
      'alpaca_zh_demo (alpaca_zh_demo.json, alpaca): 120 rows read, 120 kept, 0 rejected, 50 selected',
    );
    expect(text).toMatch(/tokens per example: p50 \d+, p95 \d+, max \d+/);
    expect(text).toContain('⟦<think>\n\n</think>\n\n');
  });

  it('fills identity.json placeholders from options, and warns when they are left', async () => {
    const filled = await loadExamplesFromDirectory({
      datasetDir,
      datasets: ['identity'],
      stage: 'sft',
      placeholders: { name: 'Webtune', author: 'the webtune team' },
    });
    const texts = filled.train.flatMap((example) =>
      example.kind === 'supervised' ? example.conversation.turns.map((turn) => turn.content) : [],
    );
    expect(texts.some((text) => text.includes('{{'))).toBe(false);
    expect(texts).toContain(
      'Hello! I am Webtune, an AI assistant developed by the webtune team. How can I assist you today?',
    );
    expect(filled.report.warnings).toEqual([]);
    const unfilled = await loadExamplesFromDirectory({ datasetDir, datasets: ['identity'], stage: 'sft' });
    expect(unfilled.report.warnings).toEqual([
      expect.objectContaining({
        dataset: 'identity',
        field: '(text)',
        expected: 'values for the placeholders {{name}}, {{author}} (option placeholders)',
        got: '85 rows that still hold them',
      }),
    ]);
  });

  it('reads LLaMA-Factory v1 message files by path', async () => {
    const sft = await loadExamplesFromDirectory({
      datasetDir,
      datasets: ['v1_sft_demo.jsonl'],
      stage: 'sft',
      placeholders: { name: 'W', author: 'A' },
    });
    expect(sft.report.rejected).toEqual([]);
    expect(sft.report.datasets[0].formatting).toBe('v1');
    expect(sft.train[0]).toMatchObject({
      conversation: {
        turns: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', lossWeight: 1 },
        ],
      },
    });
    const dpo = await loadExamplesFromDirectory({
      datasetDir,
      datasets: ['v1_dpo_demo.jsonl'],
      stage: 'dpo',
    });
    expect(dpo.report.rejected).toEqual([]);
    expect(dpo.train.length).toBeGreaterThan(0);
    expect(dpo.train[0]).toMatchObject({
      kind: 'preference',
      conversation: { system: expect.stringContaining('AI assistant') },
    });
  });
});

describe('validation report of bad input', () => {
  const good = (instruction: string) => JSON.stringify({ instruction, output: `answer to ${instruction}` });
  const lines = [
    good('first'),
    '{"instruction": "broken", "output": ',
    JSON.stringify({ instruction: 'no output' }),
    JSON.stringify({ instruction: '', input: '', output: 'x' }),
    JSON.stringify({ instruction: 'q', output: 7 }),
    '',
    good('last'),
  ];
  const files = memoryFileResolver({ 'bad.jsonl': lines.join('\r\n') });

  it('keeps the good rows and explains each rejected one with row, line and field', async () => {
    const loaded = await loadExamples({ stage: 'sft', datasets: ['bad.jsonl'], files });
    expect(loaded.train).toHaveLength(2);
    const brief = (issue: DataIssue) => [issue.row, issue.line, issue.field, issue.expected, issue.got];
    expect(loaded.report.rejected.map(brief)).toEqual([
      [2, 2, '(row)', 'one JSON object on the line', 'text that is not JSON'],
      [3, 3, 'output', 'a string', 'nothing (the field is missing)'],
      [4, 4, 'instruction', 'a non-empty string (with input, the user turn)', 'an empty string'],
      [5, 5, 'output', 'a string', 'a number (7)'],
    ]);
    expect(loaded.report.datasets[0]).toMatchObject({
      rowsRead: 6,
      rowsKept: 2,
      rowsRejected: 4,
      blankLines: 1,
      crlfLines: 6,
    });
    const text = formatValidationReport(loaded.report);
    expect(text).toContain('bad.jsonl (bad.jsonl, alpaca): 6 rows read, 2 kept, 4 rejected');
    expect(text).toContain('2 x field "output": expected a string');
    expect(text).toContain(
      'bad.jsonl row 3 (line 3), field "output": expected a string, got nothing (the field is missing)',
    );
  });

  it('strict mode fails on the first bad row', async () => {
    const error = await loadExamples({ stage: 'sft', datasets: ['bad.jsonl'], files, strict: true }).catch(
      (caught) => caught,
    );
    expect(error).toBeInstanceOf(DataError);
    expect((error as DataError).issue).toMatchObject({ file: 'bad.jsonl', row: 2, line: 2, field: '(row)' });
  });

  it('a file with no usable row fails with the report attached', async () => {
    const objectFile = memoryFileResolver({ 'object.json': '{"rows": []}' });
    const error = await loadExamples({ stage: 'sft', datasets: ['object.json'], files: objectFile }).catch(
      (caught) => caught,
    );
    expect(error).toBeInstanceOf(NoValidRowsError);
    expect((error as NoValidRowsError).report.rejected[0]).toMatchObject({
      field: '(top level)',
      expected: 'an array of rows ([{...}, {...}])',
    });
    expect((error as NoValidRowsError).message).toContain(
      'expected at least one valid row, got 0 valid rows of 0',
    );
  });

  it('counts rows the template cannot render, and truncation of a huge row', async () => {
    const rows = [
      {
        conversations: [
          { from: 'human', value: 'hi' },
          { from: 'gpt', value: 'hello' },
        ],
      },
      {
        conversations: [
          { from: 'human', value: 'w?' },
          // Two calls at once: the glm4 tool format has no parallel calls.
          {
            from: 'function_call',
            value: '[{"name": "w", "arguments": {}}, {"name": "v", "arguments": {}}]',
          },
        ],
      },
      {
        conversations: [
          { from: 'human', value: 'long' },
          { from: 'gpt', value: 'x'.repeat(5000) },
        ],
      },
    ];
    const prepared = await prepareDataset({
      stage: 'sft',
      datasets: [{ name: 'chat', path: 'chat.json' }],
      files: memoryFileResolver({ 'chat.json': JSON.stringify(rows) }),
      tokenizer: toyQwenTokenizer(),
      template: 'chatml',
      toolFormat: 'glm4',
      cutoffLen: 100,
    });
    expect(prepared.train).toHaveLength(2);
    expect(prepared.report.rejected).toEqual([
      expect.objectContaining({
        row: 2,
        field: 'turns[1]',
        expected: 'a conversation the chatml template can render',
      }),
    ]);
    expect(prepared.report.datasets[0]).toMatchObject({
      rowsRead: 3,
      rowsKept: 2,
      rowsRejected: 1,
      rowsRejectedByTemplate: 1,
    });
    // '<|im_start|>user\nlong<|im_end|>\n<|im_start|>assistant\n' is 23 toy tokens, the answer 5000 + '<|im_end|>\n'.
    expect(prepared.report.tokens).toMatchObject({
      examples: 2,
      cutoffLen: 100,
      truncated: 1,
      max: 23 + 5002,
    });
    expect(prepared.train[1]).toMatchObject({ kind: 'supervised', length: 100, fullLength: 5025 });
  });

  it('rejects a row over the byte limit without reading it into memory', async () => {
    const big = `${good('a')}\n${JSON.stringify({ instruction: 'huge', output: 'y'.repeat(2_000_000) })}\n${good('b')}\n`;
    const loaded = await loadExamples({
      stage: 'sft',
      datasets: ['big.jsonl'],
      files: memoryFileResolver({ 'big.jsonl': big }),
      maxRowBytes: 1_000_000,
    });
    expect(loaded.train).toHaveLength(2);
    expect(loaded.report.rejected).toEqual([
      expect.objectContaining({
        row: 2,
        line: 2,
        field: '(row)',
        expected: 'a row of at most 1000000 bytes',
        got: 'a row of 2000034 bytes',
      }), // 32 + 2,000,000 + 2
    ]);
  });
});

describe('mixing, splitting, folders and packing through the pipeline', () => {
  const rows = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, index) =>
      JSON.stringify({ instruction: `${prefix}${index}`, output: 'ok' }),
    ).join('\n');
  const files = memoryFileResolver({
    'domain.jsonl': rows('d', 90),
    'general/part-1.jsonl': rows('g', 20),
    'general/part-2.jsonl': rows('h', 20),
  });

  it('mixes with probabilities, splits a seeded validation set and reports both', async () => {
    const loaded = await loadExamples({
      stage: 'sft',
      datasets: ['domain.jsonl', { name: 'general', path: 'general' }],
      files,
      mixStrategy: 'interleave_under',
      interleaveProbs: [0.9, 0.1],
      valSize: 0.1,
      seed: 1,
    });
    expect(loaded.report.datasets[1]).toMatchObject({ file: 'general', rowsRead: 40 });
    const taken = loaded.report.mixing!.taken;
    expect(taken['domain.jsonl']).toBe(90);
    expect(taken.general).toBeGreaterThan(0);
    expect(loaded.report.split).toEqual({
      train: loaded.train.length,
      validation: Math.ceil((90 + taken.general) * 0.1),
      seed: 1,
    });
  });

  it('packs SFT examples into cutoff-long sequences', async () => {
    const prepared = await prepareDataset({
      stage: 'sft',
      datasets: ['domain.jsonl'],
      files,
      tokenizer: toyQwenTokenizer(),
      template: 'qwen',
      cutoffLen: 512,
      packing: true,
    });
    const packed = prepared.packed!.train;
    expect(packed.reduce((sum, pack) => sum + pack.members.length, 0)).toBe(90);
    // LLaMA-Factory packs into cutoff_len - 1 tokens.
    expect(packed.every((pack) => pack.inputIds.length <= 511)).toBe(true);
    expect(packed.length).toBeLessThan(90 / 3);
    // The rows for the trainer are the packs: positions restart, no segment ids (plain packing).
    expect(prepared.train).toHaveLength(packed.length);
    const row = prepared.train[0];
    expect(row.kind === 'supervised' && row.attentionSegmentIds).toBeUndefined();
    expect(row.kind === 'supervised' && Array.from(row.positionIds!)).toEqual(
      Array.from(packed[0].positionIds),
    );
    expect(row.kind === 'supervised' && row.members).toHaveLength(packed[0].members.length);
    const neat = await prepareDataset({
      stage: 'sft',
      datasets: ['domain.jsonl'],
      files,
      tokenizer: toyQwenTokenizer(),
      template: 'qwen',
      cutoffLen: 512,
      neatPacking: true,
    });
    const neatRow = neat.train[0];
    expect(neatRow.kind === 'supervised' && Array.from(neatRow.attentionSegmentIds!)).toEqual(
      Array.from(packed[0].segmentIds),
    );
  });
});
