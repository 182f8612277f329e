import { describe, expect, it } from 'vitest';
import { parseCsvFile } from './csv.js';
import { readCsvLines } from './csv-stream.js';
import { emptyReadStatistics, type RecordResult } from './records.js';

async function* chunked(bytes: Uint8Array, size: number) {
  for (let start = 0; start < bytes.length; start += size) yield bytes.slice(start, start + size);
}

describe('CSV read record by record (streaming)', () => {
  it('gives the rows and issues of whole-file reading, whatever the chunk size', async () => {
    const text =
      '\ufeffinstruction,output\r\nq0,a0\r\n"multi\r\nline","say ""hi"""\r\n\r\nq2,a2,extra\r\nq3,a3\n"q4, with comma",a4';
    const bytes = new Uint8Array([
      ...new TextEncoder().encode(text),
      ...new TextEncoder().encode('\nq5,'),
      0xff,
      0x0a,
    ]);
    const wholeStatistics = emptyReadStatistics();
    const whole = parseCsvFile(bytes, 'f.csv', wholeStatistics);
    const simplify = (results: RecordResult[]) =>
      results.map((result) =>
        result.kind === 'row'
          ? { row: result.location.row, line: result.location.line, value: result.value }
          : { row: result.issue.row, field: result.issue.field, expected: result.issue.expected },
      );
    for (const size of [1, 3, 7, 1024]) {
      const statistics = emptyReadStatistics();
      const streamed: RecordResult[] = [];
      for await (const result of readCsvLines(chunked(bytes, size), { file: 'f.csv', statistics }))
        streamed.push(result);
      expect(simplify(streamed), `chunks of ${size}`).toEqual(simplify(whole));
      expect(statistics.byteOrderMark).toBe(true);
      expect(statistics.blankLines).toBe(wholeStatistics.blankLines);
    }
    expect(simplify(whole)[1]).toEqual({
      row: 2,
      line: 3,
      value: { instruction: 'multi\r\nline', output: 'say "hi"' },
    });
  });

  it('rejects a record over maxRowBytes without holding it, then goes on', async () => {
    const text = `a,b\n1,2\n"${'x'.repeat(100)}\n${'y'.repeat(100)}",3\n4,5\n`;
    const results: RecordResult[] = [];
    const options = { file: 'f.csv', statistics: emptyReadStatistics(), maxRowBytes: 64 };
    for await (const result of readCsvLines(new TextEncoder().encode(text), options)) results.push(result);
    expect(results.map((result) => (result.kind === 'row' ? result.value : result.issue.expected))).toEqual([
      { a: '1', b: '2' },
      'a record of at most 64 bytes',
      { a: '4', b: '5' },
    ]);
  });
});
