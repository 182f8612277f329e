import { describe, expect, it } from 'vitest';
import { byteLines, invalidUtf8Offsets, readAllBytes } from './bytes.js';
import { parseCsvRecords } from './csv.js';
import { readRecords } from './read-records.js';
import { emptyReadStatistics, type RecordIssue, type RecordResult } from './records.js';

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const join = (...parts: (Uint8Array | number[])[]) => {
  const arrays = parts.map((part) => (part instanceof Uint8Array ? part : Uint8Array.from(part)));
  const out = new Uint8Array(arrays.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of arrays) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};

async function collect(source: Parameters<typeof readRecords>[0], file: string, maxRowBytes?: number) {
  const statistics = emptyReadStatistics();
  const results: RecordResult[] = [];
  for await (const record of readRecords(source, { file, dataset: 'test', statistics, maxRowBytes }))
    results.push(record);
  return { results, statistics };
}

/** Splits bytes into chunks of `size` so line and UTF-8 boundaries fall inside chunks. */
async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += size) yield data.slice(offset, offset + size);
}

describe('byteLines', () => {
  it('splits lines across chunk boundaries, drops \\r of CRLF and a leading BOM, keeps a last line without newline', async () => {
    const data = join([0xef, 0xbb, 0xbf], bytes('first\r\nsécond\n\nlast'));
    for (const size of [1, 2, 3, 7, 1000]) {
      const lines = [];
      let bom = 0;
      for await (const line of byteLines(chunked(data, size), { onBom: () => bom++ })) {
        lines.push({ line: line.line, text: new TextDecoder().decode(line.bytes), crlf: line.crlf });
      }
      expect(lines).toEqual([
        { line: 1, text: 'first', crlf: true },
        { line: 2, text: 'sécond', crlf: false },
        { line: 3, text: '', crlf: false },
        { line: 4, text: 'last', crlf: false },
      ]);
      expect(bom).toBe(1);
    }
  });

  it('skips a line over the limit without holding it, and goes on after it', async () => {
    async function* huge() {
      yield bytes('{"a":1}\n');
      const block = new Uint8Array(1 << 20).fill(0x61); // 1 MiB of 'a'
      for (let index = 0; index < 64; index++) yield block; // one 64 MiB line
      yield bytes('\n{"b":2}\n');
    }
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const lines = [];
    let peak = 0;
    for await (const line of byteLines(huge(), { maxLineBytes: 1 << 20 })) {
      lines.push({ line: line.line, kept: line.bytes !== undefined, byteLength: line.byteLength });
      peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - before);
    }
    expect(lines).toEqual([
      { line: 1, kept: true, byteLength: 7 },
      { line: 2, kept: false, byteLength: 64 << 20 },
      { line: 3, kept: true, byteLength: 7 },
    ]);
    // The 64 MiB line was never buffered (the generator itself reuses one 1 MiB block).
    expect(peak).toBeLessThan(32 << 20);
  });
});

describe('invalidUtf8Offsets', () => {
  it('finds truncated, overlong, surrogate and stray bytes where the WHATWG decoder does', () => {
    const cases: [number[], number[]][] = [
      [[0x61, 0xc3, 0xa9, 0x62], []],
      [[0x61, 0xc3], [1]], // truncated two-byte sequence
      [
        [0xc0, 0xaf],
        [0, 1],
      ], // overlong '/'
      [
        [0xed, 0xa0, 0x80],
        [0, 1, 2],
      ], // a UTF-16 surrogate
      [[0x80, 0x61], [0]], // stray continuation byte
      [
        [0xf4, 0x90, 0x80, 0x80],
        [0, 1, 2, 3],
      ], // above U+10FFFF
      [[0xe2, 0x82, 0x61], [0]], // sequence cut by an ASCII byte
      [[0xf0, 0x9f, 0xa6, 0x99], []], // 🦙
    ];
    for (const [input, expected] of cases) {
      expect(invalidUtf8Offsets(Uint8Array.from(input))).toEqual(expected);
      const replaced = new TextDecoder('utf-8').decode(Uint8Array.from(input));
      expect((replaced.match(/\ufffd/g) ?? []).length).toBe(expected.length);
    }
  });
});

describe('readRecords: .json arrays', () => {
  it('reads rows with their 1-based row and line numbers', async () => {
    const text = '[\n  {"a": "x"},\n  {"a": "[{\\"}"},\n\n  {"a": "z"}\n]';
    const { results } = await collect(bytes(text), 'rows.json');
    expect(results).toEqual([
      { kind: 'row', location: { dataset: 'test', file: 'rows.json', row: 1, line: 2 }, value: { a: 'x' } },
      {
        kind: 'row',
        location: { dataset: 'test', file: 'rows.json', row: 2, line: 3 },
        value: { a: '[{"}' },
      },
      { kind: 'row', location: { dataset: 'test', file: 'rows.json', row: 3, line: 5 }, value: { a: 'z' } },
    ]);
  });

  it('reports a file that is not JSON with the line and column of the error', async () => {
    const { results } = await collect(bytes('[\n  {"a": 1},\n  {"a": 2,,}\n]'), 'broken.json');
    expect(results).toHaveLength(1);
    const issue = (results[0] as RecordIssue).issue;
    expect(issue).toMatchObject({
      file: 'broken.json',
      field: '(file)',
      expected: 'valid JSON (an array of row objects)',
      line: 3,
    });
    expect(issue.got).toMatch(/^a syntax error at line 3, column \d+$/);
    expect(issue.row).toBeUndefined();
  });

  it('reports a top-level object where an array of rows is expected', async () => {
    const { results } = await collect(
      bytes('{"data": [{"instruction": "a", "output": "b"}]}'),
      'object.json',
    );
    expect(results).toEqual([
      {
        kind: 'issue',
        issue: {
          severity: 'error',
          file: 'object.json',
          dataset: 'test',
          field: '(top level)',
          expected: 'an array of rows ([{...}, {...}])',
          got: 'an object with keys data',
        },
      },
    ]);
  });

  it('rejects only the row that holds invalid UTF-8 and strips a BOM', async () => {
    const data = join(
      [0xef, 0xbb, 0xbf],
      bytes('[{"a": "ok"},\n {"a": "bad '),
      [0xff, 0xfe],
      bytes('"},\n {"a": "fine"}]'),
    );
    const { results, statistics } = await collect(data, 'bytes.json');
    expect(statistics.byteOrderMark).toBe(true);
    expect(results.map((result) => result.kind)).toEqual(['row', 'issue', 'row']);
    expect((results[1] as { issue: unknown }).issue).toEqual({
      severity: 'error',
      dataset: 'test',
      file: 'bytes.json',
      row: 2,
      line: 2,
      field: '(bytes)',
      expected: 'valid UTF-8 text',
      got: 'the invalid byte 0xFF at byte offset 29', // 3 BOM bytes + 26,
    });
  });

  it('reads a .json file that holds JSON lines, and says so', async () => {
    const { results, statistics } = await collect(bytes('{"a": 1}\r\n{"a": 2}\r\n'), 'lines.json');
    expect(results.map((result) => (result.kind === 'row' ? result.value : null))).toEqual([
      { a: 1 },
      { a: 2 },
    ]);
    expect(statistics.notes[0]).toMatch(/JSON object per line/);
    expect(statistics.crlfLines).toBe(2);
  });
});

describe('readRecords: JSON lines and text, streamed', () => {
  it('rejects bad lines with their line numbers, skips and counts blank lines, handles CRLF and a BOM', async () => {
    const text = '\ufeff{"a": 1}\r\n\r\n{"a": 2\r\n[1, 2]\r\n   \r\n{"a": 3}';
    const { results, statistics } = await collect(chunked(bytes(text), 5), 'data.jsonl');
    expect(results).toEqual([
      { kind: 'row', location: { dataset: 'test', file: 'data.jsonl', row: 1, line: 1 }, value: { a: 1 } },
      {
        kind: 'issue',
        issue: expect.objectContaining({
          file: 'data.jsonl',
          row: 2,
          line: 3,
          field: '(row)',
          expected: 'one JSON object on the line',
          got: 'text that is not JSON',
        }),
      },
      {
        kind: 'issue',
        issue: expect.objectContaining({
          row: 3,
          line: 4,
          field: '(row)',
          expected: 'a JSON object',
          got: 'an array of 2',
        }),
      },
      { kind: 'row', location: { dataset: 'test', file: 'data.jsonl', row: 4, line: 6 }, value: { a: 3 } },
    ]);
    expect(statistics).toMatchObject({ blankLines: 2, byteOrderMark: true, crlfLines: 5 });
  });

  it('rejects a line with invalid UTF-8 and a row over the size limit', async () => {
    const data = join(
      bytes('{"a": "x"}\n{"a": "'),
      [0xc3, 0x28],
      bytes('"}\n{"a": "'),
      bytes('y'.repeat(5000)),
      bytes('"}\n{"a": "z"}\n'),
    );
    const { results } = await collect(chunked(data, 64), 'data.jsonl', 1000);
    expect(results.map((result) => result.kind)).toEqual(['row', 'issue', 'issue', 'row']);
    expect((results[1] as { issue: unknown }).issue).toMatchObject({
      row: 2,
      line: 2,
      field: '(bytes)',
      expected: 'valid UTF-8 text',
      got: 'the invalid byte 0xC3 at column 8 (bytes)',
    });
    expect((results[2] as { issue: unknown }).issue).toMatchObject({
      row: 3,
      line: 3,
      field: '(row)',
      expected: 'a row of at most 1000 bytes',
      got: 'a row of 5009 bytes',
    });
  });

  it('reads from a browser Blob stream and a ReadableStream', async () => {
    const blob = new Blob(['{"text": "a"}\n', '{"text": "b"}\n']);
    const fromBlob = await collect(blob, 'blob.jsonl');
    const fromStream = await collect(blob.stream() as ReadableStream<Uint8Array>, 'stream.jsonl');
    expect(fromBlob.results.map((result) => (result.kind === 'row' ? result.value : null))).toEqual([
      { text: 'a' },
      { text: 'b' },
    ]);
    expect(fromStream.results).toHaveLength(2);
    expect(await readAllBytes(blob)).toEqual(bytes('{"text": "a"}\n{"text": "b"}\n'));
  });

  it('reads text files as one row per non-blank line', async () => {
    const { results, statistics } = await collect(bytes('first doc\r\n\r\nsecond doc\n'), 'corpus.txt');
    expect(results).toEqual([
      {
        kind: 'row',
        location: { dataset: 'test', file: 'corpus.txt', row: 1, line: 1 },
        value: { text: 'first doc' },
      },
      {
        kind: 'row',
        location: { dataset: 'test', file: 'corpus.txt', row: 2, line: 3 },
        value: { text: 'second doc' },
      },
    ]);
    expect(statistics.blankLines).toBe(1);
  });
});

describe('readRecords: CSV', () => {
  it('parses quotes, escaped quotes, fields over several lines and CRLF', () => {
    const records = parseCsvRecords('a,b\r\n"x, y","say ""hi"""\r\n"multi\nline",z\r\n');
    expect(records).toEqual([
      { fields: ['a', 'b'], line: 1, endLine: 1 },
      { fields: ['x, y', 'say "hi"'], line: 2, endLine: 2 },
      { fields: ['multi\nline', 'z'], line: 3, endLine: 4 },
    ]);
  });

  it('keys rows by the header and rejects a row with the wrong number of fields', async () => {
    const { results } = await collect(bytes('instruction,input,output\nhi,,hello\nonly,two\n'), 'data.csv');
    expect(results[0]).toEqual({
      kind: 'row',
      location: { dataset: 'test', file: 'data.csv', row: 1, line: 2 },
      value: { instruction: 'hi', input: '', output: 'hello' },
    });
    expect((results[1] as { issue: unknown }).issue).toMatchObject({
      row: 2,
      line: 3,
      field: '(row)',
      expected: '3 comma-separated fields (instruction, input, output)',
      got: '2 fields',
    });
  });

  it('refuses an unsupported extension', async () => {
    await expect(collect(bytes('x'), 'data.arrow')).rejects.toThrow(
      /expected a .json, .jsonl, .csv, .parquet or .txt file/,
    );
  });
});

describe('readRecords: UTF-16 files', () => {
  const utf16 = (text: string, order: 'le' | 'be', mark: boolean) => {
    const out = new Uint8Array((text.length + (mark ? 1 : 0)) * 2);
    const units = [...(mark ? [0xfeff] : []), ...Array.from(text, (_, i) => text.charCodeAt(i))];
    units.forEach((unit, i) => {
      out[2 * i + (order === 'le' ? 0 : 1)] = unit & 0xff;
      out[2 * i + (order === 'le' ? 1 : 0)] = unit >> 8;
    });
    return out;
  };
  it('reads UTF-16 LE and BE, with or without a byte-order mark, streamed or whole', async () => {
    const lines = '{"a": "é1"}\r\n{"a": "漢2"}\r\n';
    const array = '[{"a": "é1"}, {"a": "漢2"}]';
    for (const order of ['le', 'be'] as const) {
      for (const mark of [true, false]) {
        for (const [text, file] of [
          [lines, 'data.jsonl'],
          [array, 'data.json'],
        ]) {
          for (const source of [utf16(text, order, mark), chunked(utf16(text, order, mark), 3)]) {
            const { results } = await collect(source, file);
            expect(results.map((r) => (r.kind === 'row' ? r.value : r.issue))).toEqual([
              { a: 'é1' },
              { a: '漢2' },
            ]);
          }
        }
      }
    }
  });
});
