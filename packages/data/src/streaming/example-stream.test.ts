import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataConfigError, DataError, type DataIssue } from '../issues.js';
import { type FileResolver, memoryFileResolver } from '../pipeline/file-resolver.js';
import { prepareDataset } from '../pipeline/prepare.js';
import { toyQwenTokenizer } from '../test-support/toy-tokenizer.js';
import type { EncodedExample } from '../tokenize/encode-examples.js';
import {
  type ExampleStream,
  type StreamOptions,
  type StreamPosition,
  streamExamples,
} from './example-stream.js';

const tokenizer = toyQwenTokenizer();
const alpacaLine = (i: number) => `${JSON.stringify({ instruction: `q${i}`, output: `a${i}` })}\n`;
const alpaca = (count: number, from = 0) =>
  Array.from({ length: count }, (_, i) => alpacaLine(from + i)).join('');

/** A row's token ids (every row kind streamed here has them). */
const idsOf = (row: EncodedExample) => Array.from((row as { inputIds: ArrayLike<number> }).inputIds);

/** The instruction a row was made from (`q12` -> "q12"), read back from its tokens. */
function questionOf(row: EncodedExample): string {
  const text = String.fromCodePoint(...idsOf(row).map((id) => (id >= 1000 ? id - 1000 : 32)));
  return /\b[qtp]\d+/.exec(text)?.[0] ?? text;
}

async function take(stream: ExampleStream, count: number): Promise<EncodedExample[]> {
  const rows: EncodedExample[] = [];
  for (let i = 0; i < count; i++) rows.push(await stream.next());
  return rows;
}

const base = (
  files: FileResolver,
  datasets: string[],
  extra: Partial<StreamOptions> = {},
): StreamOptions => ({
  stage: 'sft',
  datasets,
  files,
  tokenizer,
  template: 'qwen',
  ...extra,
});

describe('streaming: true (lazy read, mix, shuffle buffer, tokenize on the fly)', () => {
  it('holds the shuffle buffer, not the file: 20,000 generated rows, at most buffer_size + 2 in flight', async () => {
    const total = 20_000;
    let generated = 0;
    let emitted = 0;
    let maxInFlight = 0;
    const files: FileResolver = {
      open: () =>
        (async function* () {
          // One row per chunk, produced only when the reader asks for it.
          for (let i = 0; i < total; i++) {
            generated++;
            maxInFlight = Math.max(maxInFlight, generated - emitted);
            yield new TextEncoder().encode(alpacaLine(i));
          }
        })(),
    };
    const stream = await streamExamples(base(files, ['big.jsonl'], { bufferSize: 64 }));
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      seen.add(questionOf(await stream.next()));
      emitted++;
    }
    expect(seen.size).toBe(3000);
    expect(stream.bufferPeak).toBe(64);
    // The buffer, the reader's one row of look-ahead, and the row being handed out.
    expect(maxInFlight).toBeLessThanOrEqual(64 + 2);
    expect(generated).toBeLessThan(3000 + 70);
    await stream.close();
  });

  it('mixes as the in-memory loader does (interleave_under with interleave_probs, buffer 1)', async () => {
    const files = memoryFileResolver({ 'a.jsonl': alpaca(30), 'b.jsonl': alpaca(12, 100) });
    const mix = { mixStrategy: 'interleave_under' as const, interleaveProbs: [0.7, 0.3], seed: 7 };
    const prepared = await prepareDataset({ ...base(files, ['a.jsonl', 'b.jsonl']), ...mix });
    const stream = await streamExamples(base(files, ['a.jsonl', 'b.jsonl'], { ...mix, bufferSize: 1 }));
    const streamed = await take(stream, prepared.train.length);
    expect(streamed.map(questionOf)).toEqual(prepared.train.map(questionOf));
    expect(streamed.map(idsOf)).toEqual(prepared.train.map(idsOf));
    // The next row starts a new pass.
    expect(questionOf(await stream.next())).toMatch(/^q/);
  });

  it('shuffles within the buffer: each pass gives every row once, in a new order', async () => {
    const files = memoryFileResolver({ 'a.jsonl': alpaca(100) });
    const stream = await streamExamples(base(files, ['a.jsonl'], { bufferSize: 8 }));
    const first = (await take(stream, 100)).map(questionOf);
    const second = (await take(stream, 100)).map(questionOf);
    const all = Array.from({ length: 100 }, (_, i) => `q${i}`);
    expect([...first].sort()).toEqual([...all].sort());
    expect([...second].sort()).toEqual([...all].sort());
    expect(first).not.toEqual(all);
    expect(second).not.toEqual(first);
    // A buffer of 8 moves a row at most a few places early: q99 cannot come first.
    expect(first.indexOf('q99')).toBeGreaterThan(80);
  });

  it('interleave_over restarts the small dataset until every one has run out', async () => {
    const files = memoryFileResolver({ 'a.jsonl': alpaca(20), 'b.jsonl': alpaca(3, 100) });
    const stream = await streamExamples(
      base(files, ['a.jsonl', 'b.jsonl'], { mixStrategy: 'interleave_over', bufferSize: 1 }),
    );
    const rows = (await take(stream, 40)).map(questionOf);
    // Taking turns: a's 20 rows and 19 of b (b's three rows again and again); a ran out last, so
    // the pass ends there and the 40th row starts the next pass.
    expect(rows.slice(0, 39).filter((q) => Number(q.slice(1)) >= 100)).toHaveLength(19);
    expect(rows[39]).toBe('q0');
    expect(rows.slice(0, 6)).toEqual(['q0', 'q100', 'q1', 'q101', 'q2', 'q102']);
    expect(rows[7]).toBe('q100');
  });

  it.each([
    [
      'sft, interleave_over, buffer 16',
      { mixStrategy: 'interleave_over', interleaveProbs: [0.6, 0.4] },
      [1, 17, 45, 90],
    ],
    ['pt blocks in groups of 5 documents', { stage: 'pt', groupSize: 5, cutoffLen: 8 }, [1, 3, 40, 77]],
    ['kto pairs in groups of 4', { stage: 'kto', groupSize: 4 }, [2, 5, 33]],
  ] as const)('resumes exactly at a saved position: %s', async (_, extra, stops) => {
    const kto = (count: number, from: number) =>
      Array.from({ length: count }, (_, i) =>
        JSON.stringify({
          messages: [
            { role: 'user', content: `q${from + i}` },
            { role: 'assistant', content: `a${from + i}` },
          ],
          label: i % 3 !== 0,
        }),
      ).join('\n');
    const text = (count: number, from: number) =>
      Array.from({ length: count }, (_, i) =>
        JSON.stringify({ text: `t${from + i} ${'x'.repeat(i % 7)}` }),
      ).join('\n');
    const stage = (extra as { stage?: string }).stage ?? 'sft';
    const make = stage === 'pt' ? text : stage === 'kto' ? kto : alpaca;
    const files = memoryFileResolver({ 'a.jsonl': make(37, 0), 'b.jsonl': make(11, 200) });
    const datasets = stage === 'kto' ? ['a.jsonl'] : ['a.jsonl', 'b.jsonl'];
    const options = base(files, datasets, {
      bufferSize: 16,
      seed: 3,
      ...(stage === 'kto' ? { description: undefined } : {}),
      ...(extra as Partial<StreamOptions>),
    });
    if (stage === 'kto')
      options.datasets = [
        {
          path: 'a.jsonl',
          description: {
            formatting: 'sharegpt',
            columns: { messages: 'messages', kto_tag: 'label' },
            tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
          },
        },
      ];
    const straight = await streamExamples(options);
    const expected = await take(straight, 100);
    for (const stop of stops) {
      const first = await streamExamples(options);
      const head = await take(first, stop);
      const position = JSON.parse(JSON.stringify(first.position())) as StreamPosition;
      await first.close();
      const resumed = await streamExamples(options);
      await resumed.seek(position);
      const tail = await take(resumed, 100 - stop);
      const ids = (rows: EncodedExample[]) => rows.map((row) => idsOf(row).join(','));
      expect(ids([...head, ...tail]), `stopped after ${stop}`).toEqual(ids(expected));
      await resumed.close();
    }
  });

  it('names file, row and field of every bad row, once, and never repeats them on a resume', async () => {
    const lines = [
      alpacaLine(0),
      '{"instruction": "q1", "output": \n',
      '{"instruction": "q2"}\n',
      alpacaLine(3),
      alpacaLine(4),
    ];
    const files = memoryFileResolver({ 'bad.jsonl': lines.join('') });
    const issues: DataIssue[] = [];
    const options = base(files, ['bad.jsonl'], { bufferSize: 1, onIssue: (issue) => issues.push(issue) });
    const stream = await streamExamples(options);
    expect((await take(stream, 3)).map(questionOf)).toEqual(['q0', 'q3', 'q4']);
    expect(issues.map(({ file, row, field }) => ({ file, row, field }))).toEqual([
      { file: 'bad.jsonl', row: 2, field: '(row)' },
      { file: 'bad.jsonl', row: 3, field: 'output' },
    ]);
    const position = stream.position();
    const otherBuffer = await streamExamples({ ...options, bufferSize: 2 });
    await expect(otherBuffer.seek(position)).rejects.toThrow(/other settings \(buffer_size 1 -> 2\)/);
    const resumed = await streamExamples(options);
    await resumed.seek(position);
    expect(questionOf(await resumed.next())).toBe('q0');
    // The second pass reports them again (they were read again), the resume itself did not.
    expect(issues).toHaveLength(4);
  });

  it('holds out the first val_size rows of a pass and refuses a fractional val_size', async () => {
    const files = memoryFileResolver({ 'a.jsonl': alpaca(10) });
    const stream = await streamExamples(base(files, ['a.jsonl'], { bufferSize: 1, valSize: 3 }));
    expect((await stream.validation()).map(questionOf)).toEqual(['q0', 'q1', 'q2']);
    expect((await take(stream, 8)).map(questionOf)).toEqual(['q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'q9', 'q3']);
    await expect(streamExamples(base(files, ['a.jsonl'], { valSize: 0.1 }))).rejects.toThrow(DataConfigError);
    const everything = await streamExamples(base(files, ['a.jsonl'], { valSize: 10 }));
    await expect(everything.next()).rejects.toThrow(/val_size 10 holds out every row/);
    await expect(streamExamples(base(files, ['a.jsonl'], { packing: true }))).rejects.toThrow(
      /greedy knapsack/,
    );
  });

  it('reads CSV record by record (quoted line breaks), refuses a JSON array, streams .json JSON lines', async () => {
    const csv = 'instruction,output\nq0,a0\n"q1\nstill q1","a ""1"""\nq2,a2\n';
    const files = memoryFileResolver({
      'a.csv': csv,
      'array.json': `[${alpacaLine(0)}]`,
      'lines.json': alpaca(2),
    });
    const inMemory = await prepareDataset(base(files, ['a.csv']));
    const stream = await streamExamples(base(files, ['a.csv'], { bufferSize: 1 }));
    const rows = await take(stream, 3);
    expect(rows.map(idsOf)).toEqual(inMemory.train.map(idsOf));
    const refused = await streamExamples(base(files, ['array.json']))
      .then((s) => s.next())
      .catch((error) => error);
    expect(refused).toBeInstanceOf(DataError);
    expect((refused as DataError).issue).toMatchObject({ file: 'array.json', field: '(file)' });
    expect((refused as DataError).message).toMatch(/JSON array.*cannot be streamed/);
    const lines = await streamExamples(base(files, ['lines.json'], { bufferSize: 1 }));
    expect((await take(lines, 2)).map(questionOf)).toEqual(['q0', 'q1']);
  });

  it('reads parquet a row group at a time, giving the rows the in-memory loader gives', async () => {
    const bytes = new Uint8Array(
      readFileSync(new URL('../readers/__fixtures__/alpaca.parquet', import.meta.url)),
    );
    const files = memoryFileResolver({ 'alpaca.parquet': bytes });
    const inMemory = await prepareDataset(base(files, ['alpaca.parquet']));
    const stream = await streamExamples(base(files, ['alpaca.parquet'], { bufferSize: 1 }));
    const rows = await take(stream, inMemory.train.length);
    expect(rows.map(idsOf)).toEqual(inMemory.train.map(idsOf));
  });
});
