/**
 * Property-based fuzzing of the reader (issue 19): whatever the bytes, reading a safetensors file
 * either returns tensors that lie inside the file or throws a SafetensorsError; never another
 * error (RangeError, TypeError, a JSON SyntaxError) and never a hang. Bounded for CI.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SafetensorsError } from './errors.js';
import { readSafetensorsBytes } from './read.js';
import { writeSafetensors } from './write.js';

const RUNS = 1500;
let cases = 0;

function readsOrRefuses(bytes: Uint8Array): boolean {
  cases++;
  try {
    const { tensors } = readSafetensorsBytes(bytes, { fileName: 'fuzz.safetensors' });
    for (const tensor of tensors) {
      if (tensor.data.byteLength > bytes.length) return false;
    }
    return true;
  } catch (error) {
    if (error instanceof SafetensorsError) return true;
    throw new Error(`untyped error for ${bytes.length} bytes: ${(error as Error).stack}`);
  }
}

/** A valid file to mutate: a few small tensors. */
function validFile(): Uint8Array {
  return writeSafetensors(
    [
      { name: 'a.weight', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      { name: 'b', dtype: 'F16', shape: [4], data: new Uint8Array(8) },
    ],
    { format: 'pt' },
  );
}

describe('safetensors reader fuzz', () => {
  it(`random bytes and mutated files: a result or a SafetensorsError (${RUNS} x 3 cases)`, () => {
    const base = validFile();
    const headerLength = Number(new DataView(base.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(base.subarray(8, 8 + headerLength));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), readsOrRefuses), { numRuns: RUNS, seed: 19 });
    // Byte flips and truncations of a valid file.
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(base.length),
        (flips, cut) => {
          const bytes = base.slice(0, Math.max(cut, 1));
          for (const [at, value] of flips) if (at < bytes.length) bytes[at] = value;
          return readsOrRefuses(bytes);
        },
      ),
      { numRuns: RUNS, seed: 19 },
    );
    // Headers that are JSON of the wrong shapes (offsets, dtypes, shapes, huge numbers).
    const value = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(2 ** 53, -1, 1e300, Number.MAX_SAFE_INTEGER),
      fc.string({ maxLength: 6 }),
      fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'U8', 'F8_E4M3', 'XX'),
      fc.array(fc.oneof(fc.integer({ min: -2, max: 1 << 20 }), fc.constantFrom(2 ** 40, 0.5)), {
        maxLength: 4,
      }),
      fc.constant(null),
    );
    const entry = fc.record(
      { dtype: value, shape: value, data_offsets: fc.oneof(value, fc.tuple(fc.integer(), fc.integer())) },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(entry, value), { maxKeys: 4 }),
        fc.nat(64),
        (json, padding) => {
          const text = new TextEncoder().encode(JSON.stringify(json));
          const bytes = new Uint8Array(8 + text.length + padding);
          new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
          bytes.set(text, 8);
          return readsOrRefuses(bytes);
        },
      ),
      { numRuns: RUNS, seed: 19 },
    );
    expect(header).toContain('a.weight');
    expect(cases).toBeGreaterThanOrEqual(3 * RUNS);
    console.log(`safetensors reader fuzz: ${cases} cases, 0 untyped errors`);
  });
});
