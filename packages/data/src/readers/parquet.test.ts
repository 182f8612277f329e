import { openAsBlob, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { memoryFileResolver } from '../pipeline/file-resolver.js';
import { loadExamples } from '../pipeline/load-examples.js';
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import { parseDatasetInfo } from '../registry/dataset-info.js';
import { readRecords } from './read-records.js';
import { emptyReadStatistics, type RecordResult } from './records.js';

const fixture = (name: string) => new URL(`./__fixtures__/${name}`, import.meta.url);
const EXPECTED = JSON.parse(readFileSync(fixture('parquet-rows.json'), 'utf8')) as {
  alpaca: Record<string, unknown>[];
  sharegpt: Record<string, unknown>[];
};

async function collect(source: Parameters<typeof readRecords>[0], file: string): Promise<RecordResult[]> {
  const results: RecordResult[] = [];
  for await (const result of readRecords(source, { file, statistics: emptyReadStatistics() }))
    results.push(result);
  return results;
}

describe('parquet files (written by pyarrow, as the hub stores datasets)', () => {
  it('reads every row of every row group, from bytes and from a file-backed Blob', async () => {
    for (const name of ['alpaca', 'sharegpt'] as const) {
      const bytes = new Uint8Array(readFileSync(fixture(`${name}.parquet`)));
      for (const source of [bytes, await openAsBlob(fixture(`${name}.parquet`))]) {
        const rows = await collect(source, `${name}.parquet`);
        expect(rows.map((row) => (row.kind === 'row' ? row.value : row.issue))).toEqual(EXPECTED[name]);
        expect(rows.map((row) => row.kind === 'row' && row.location.row)).toEqual(
          EXPECTED[name].map((_, index) => index + 1),
        );
      }
    }
  });

  it('names the file when it is not parquet', async () => {
    const [result] = await collect(new TextEncoder().encode('{"not": "parquet"}'), 'broken.parquet');
    expect(result).toMatchObject({
      kind: 'issue',
      issue: { file: 'broken.parquet', field: '(file)', expected: 'a parquet file' },
    });
  });

  it('loads SFT examples from parquet, sharegpt and alpaca detected from the first row', async () => {
    const files = memoryFileResolver({
      'alpaca.parquet': new Uint8Array(readFileSync(fixture('alpaca.parquet'))),
      'sharegpt.parquet': new Uint8Array(readFileSync(fixture('sharegpt.parquet'))),
    });
    const loaded = await loadExamples({
      stage: 'sft',
      datasets: ['alpaca.parquet', 'sharegpt.parquet'],
      files,
    });
    expect(loaded.train).toHaveLength(12);
    expect(loaded.report.rejected).toEqual([]);
    const last = loaded.train.find(
      (example) => example.location.file === 'sharegpt.parquet' && example.location.row === 5,
    );
    expect(last?.kind === 'supervised' && last.conversation.turns.map((turn) => turn.content)).toEqual([
      'What is 4 plus 4?',
      '8',
    ]);
  });
});

describe('hub datasets (dataset_info hf_hub_url, ms_hub_url)', () => {
  const info = parseDatasetInfo(
    JSON.stringify({
      numbers: { hf_hub_url: 'owner/numbers', subset: 'en', split: 'train', formatting: 'sharegpt' },
      modelscope: { ms_hub_url: 'AI-ModelScope/alpaca' },
    }),
    'dataset_info.json',
  );

  it('reads the files the hubDataset hook fetched, with subset and split passed to it', async () => {
    const asked: DatasetAttributes[] = [];
    const loaded = await loadExamples({
      stage: 'sft',
      datasets: ['numbers'],
      datasetInfo: info,
      hubDataset: async (attributes) => {
        asked.push(attributes);
        return [{ name: 'en/train-0.parquet', source: await openAsBlob(fixture('sharegpt.parquet')) }];
      },
    });
    expect(asked.map(({ location, subset, split }) => ({ location, subset, split }))).toEqual([
      { location: 'owner/numbers', subset: 'en', split: 'train' },
    ]);
    expect(loaded.train).toHaveLength(5);
    expect(loaded.report.datasets[0].file).toBe('en/train-0.parquet');
  });

  it('refuses ModelScope datasets by name, and hub datasets without a downloader', async () => {
    await expect(loadExamples({ stage: 'sft', datasets: ['modelscope'], datasetInfo: info })).rejects.toThrow(
      /ms_hub_url.*hf_hub_url or a local file_name/s,
    );
    await expect(loadExamples({ stage: 'sft', datasets: ['numbers'], datasetInfo: info })).rejects.toThrow(
      /hf_hub owner\/numbers/,
    );
  });
});
