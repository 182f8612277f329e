import { describe, expect, it } from 'vitest';
import { EvaluationError } from '../errors.js';
import { parseCsv } from './csv.js';

describe('parseCsv', () => {
  it('reads plain, quoted and escaped fields with their line numbers', () => {
    const records = parseCsv('a,b,c\n"x, y","say ""hi""",z\n', 'f.csv');
    expect(records.map((record) => record.fields)).toEqual([
      ['a', 'b', 'c'],
      ['x, y', 'say "hi"', 'z'],
    ]);
    expect(records.map((record) => record.line)).toEqual([1, 2]);
  });

  it('keeps newlines inside quoted fields and numbers later records by physical line', () => {
    const text = 'q1,"line one\nline two\r\nline three",B\r\nq2,plain,C\n\n\nq3,x,D';
    const records = parseCsv(text);
    expect(records.map((record) => record.fields)).toEqual([
      ['q1', 'line one\nline two\nline three', 'B'],
      ['q2', 'plain', 'C'],
      ['q3', 'x', 'D'],
    ]);
    expect(records.map((record) => [record.line, record.endLine])).toEqual([
      [1, 3],
      [4, 4],
      [7, 7],
    ]);
  });

  it('reads empty fields, a byte-order mark, old Mac endings and a missing final newline', () => {
    expect(parseCsv('\uFEFF,Question,A\r0,,"" \r1,q,a').map((record) => record.fields)).toEqual([
      ['', 'Question', 'A'],
      ['0', '', ' '],
      ['1', 'q', 'a'],
    ]);
  });

  it('keeps a quote inside an unquoted field as text, as Python csv does', () => {
    expect(parseCsv('He said "no",b\n')[0].fields).toEqual(['He said "no"', 'b']);
    expect(parseCsv('"ab"cd,e\n')[0].fields).toEqual(['abcd', 'e']);
  });

  it('names the file and the line of a quote that never closes', () => {
    const run = () => parseCsv('a,b\nc,"open\nd,e\n', 'dev/x.csv');
    expect(run).toThrow(EvaluationError);
    expect(run).toThrow('dev/x.csv:2: a quoted field opened on line 2 is never closed');
  });

  it('parses a large file in linear time', () => {
    const row = '"What is 1, 2?","1","2","3","4",A\n';
    const started = performance.now();
    const records = parseCsv(row.repeat(50_000));
    expect(records).toHaveLength(50_000);
    expect(records[49_999].line).toBe(50_000);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
