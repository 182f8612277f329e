/**
 * Property-based fuzzing of the dataset readers and the split/mix settings (issue 19): any bytes
 * give rows and row issues, or one DataError; any val_size, max_samples or interleave_probs gives a
 * result or a DataConfigError. Never an untyped error. Bounded for CI.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataConfigError, DataError } from '../issues.js';
import { mixDatasets } from '../mixing/mix.js';
import { splitValidation, takeFirst } from '../mixing/sampling.js';
import { readRecords } from './read-records.js';
import { emptyReadStatistics } from './records.js';

const RUNS = 600;

async function readsOrRefuses(bytes: Uint8Array, file: string, chunk: number): Promise<boolean> {
  async function* chunks() {
    for (let offset = 0; offset < bytes.length; offset += chunk) yield bytes.slice(offset, offset + chunk);
  }
  try {
    for await (const record of readRecords(chunk > 0 ? chunks() : bytes, {
      file,
      statistics: emptyReadStatistics(),
      maxRowBytes: 512,
    })) {
      if (record.kind !== 'row' && record.kind !== 'issue') return false;
    }
    return true;
  } catch (error) {
    if (error instanceof DataError) return true;
    throw new Error(`untyped error reading ${file}: ${(error as Error).stack}`);
  }
}

const jsonish = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.array(fc.json({ maxDepth: 2 }), { maxLength: 5 }).map((rows) => rows.join('\n')),
  fc.array(fc.json({ maxDepth: 2 }), { maxLength: 5 }).map((rows) => `[${rows.join(',')}]`),
  fc.string({ maxLength: 200, unit: 'binary' }),
);

describe('dataset readers fuzz', () => {
  it(`bytes of every kind: rows and issues, or a DataError (${RUNS} x 2 cases)`, async () => {
    let cases = 0;
    const files = fc.constantFrom('d.json', 'd.jsonl', 'd.csv', 'd.txt', 'd.parquet');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), files, fc.nat(7), async (bytes, file, chunk) => {
        cases++;
        return readsOrRefuses(bytes, file, chunk);
      }),
      { numRuns: RUNS, seed: 19 },
    );
    await fc.assert(
      fc.asyncProperty(jsonish, files, fc.boolean(), fc.nat(5), async (text, file, utf16, chunk) => {
        cases++;
        let bytes = new TextEncoder().encode(text);
        if (utf16) {
          bytes = new Uint8Array(text.length * 2);
          for (let i = 0; i < text.length; i++)
            new DataView(bytes.buffer).setUint16(2 * i, text.charCodeAt(i), true);
        }
        return readsOrRefuses(bytes, file, chunk);
      }),
      { numRuns: RUNS, seed: 19 },
    );
    expect(cases).toBe(2 * RUNS);
    console.log(`dataset readers fuzz: ${cases} cases, 0 untyped errors`);
  });

  it(`val_size, max_samples and interleave_probs: a result or a DataConfigError (${RUNS} cases)`, () => {
    let cases = 0;
    const number = fc.oneof(
      fc.double(),
      fc.integer({ min: -5, max: 50 }),
      fc.constantFrom(0, 0.5, 1, 1e9, 1e-300),
    );
    fc.assert(
      fc.property(
        fc.array(fc.nat(), { maxLength: 20 }),
        number,
        number,
        fc.oneof(
          fc.array(number, { maxLength: 3 }),
          fc.constantFrom([0.5, 0.5], [1, 0], [1e-300, 1], [0.25, 0.75]),
        ),
        (items, valSize, max, probabilities) => {
          cases++;
          const typed = (run: () => unknown) => {
            try {
              run();
            } catch (error) {
              if (!(error instanceof DataConfigError))
                throw new Error(`untyped error: ${(error as Error).stack}`);
            }
          };
          typed(() => {
            const split = splitValidation(items, valSize, 1);
            if (split.train.length === 0 && items.length > 0) throw new Error('nothing left to train on');
          });
          typed(() => takeFirst(items, max));
          typed(() =>
            mixDatasets([items, items.slice(0, 3)], { strategy: 'interleave_over', probabilities, seed: 1 }),
          );
          return true;
        },
      ),
      { numRuns: RUNS, seed: 19 },
    );
    console.log(`dataset settings fuzz: ${cases} cases, 0 untyped errors`);
  });
});
