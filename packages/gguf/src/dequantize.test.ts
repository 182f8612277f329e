import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantize } from './dequantize.js';
import { quantize } from './quantize.js';
import { readGguf } from './read.js';

// quants.gguf is written by tools/golden/gguf_fixtures.py with the `gguf` Python package.
const golden = await readGguf(
  new Uint8Array(await readFile(join(import.meta.dirname, '__fixtures__', 'quants.gguf'))),
);
const input = await golden.readFloat32('input');

describe('dequantize against gguf-py (gguf.quants)', () => {
  for (const type of ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K']) {
    it(`${type}: random blocks decode to gguf.quants' values, bit for bit`, async () => {
      const blocks = await golden.readRaw(`${type}.blocks`);
      expect(blocks.info.typeName).toBe(type);
      const ours = await golden.readFloat32(`${type}.blocks`);
      const theirs = await golden.readFloat32(`${type}.dequantized`);
      expect(ours.length).toBe(2048);
      expect(Array.from(ours)).toEqual(Array.from(theirs));
    });
  }
});

describe('quantize against gguf-py (gguf.quants)', () => {
  for (const type of ['Q8_0', 'Q4_0', 'Q5_0'] as const) {
    it(`${type}: the same blocks as gguf.quants.quantize`, async () => {
      const theirs = await golden.readRaw(`${type}.of_input`);
      expect(Buffer.from(quantize(type, input)).equals(Buffer.from(theirs.data))).toBe(true);
    });
  }

  it('round trips stay within a bound relative to the largest value of each block', () => {
    for (const [type, bound, blockSize] of [
      ['Q4_K', 0.07, 256],
      ['Q6_K', 0.03, 256],
      ['Q8_0', 0.005, 32],
      ['Q4_0', 0.13, 32],
    ] as const) {
      const decoded = dequantize(type, quantize(type, input), input.length);
      let worst = 0;
      for (let block = 0; block < input.length; block += blockSize) {
        const slice = input.subarray(block, block + blockSize);
        const range = Math.max(...slice.map(Math.abs)) || 1;
        for (let j = 0; j < blockSize; j++)
          worst = Math.max(worst, Math.abs(decoded[block + j] - slice[j]) / range);
      }
      expect(worst, type).toBeLessThan(bound);
      expect(worst, type).toBeGreaterThan(0);
    }
  });

  it('F16 and BF16 round to nearest even and decode exactly', () => {
    const values = Float32Array.of(1, -2.5, 65504, 1e-8, 0.1, 2.5e-3);
    expect(Array.from(dequantize('F16', quantize('F16', values), 6))).toEqual([
      1, -2.5, 65504, 0, 0.0999755859375, 0.0025005340576171875,
    ]);
    expect(Array.from(dequantize('BF16', quantize('BF16', values), 6))).toEqual(
      Array.from(
        values,
        (value) =>
          new Float32Array(
            new Uint32Array([Math.round(new Uint32Array(Float32Array.of(value).buffer)[0] / 65536) * 65536])
              .buffer,
          )[0],
      ),
    );
  });
});
