import { Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows } from '../packed-matmul/formats.js';
import { packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import { decodeAttention } from './decode-attention.js';
import { decodeMatvec } from './decode-matvec.js';
import { decodeNormAdd } from './decode-norm-add.js';
import { decodeEmbed, decodeSoftcap } from './decode-tokens.js';
import { decodeAttentionReference, normMatvecReference } from './reference.js';

/*
 * What the fused decoder needs for Gemma, each against float64: the GeGLU epilogue (GELU's tanh
 * form), a norm added into the residual stream (post-attention and post-feed-forward norms), the
 * scaled embedding, attention and final logit soft-capping.
 */

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const tolerance = { rtol: 2e-5, atol: 2e-5 };
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

describe('decode kernels for Gemma', () => {
  it('GeGLU: gelu_tanh(gate) * up over f32 and Q8_0 weights, 1 and 3 rows', async () => {
    for (const [format, rows] of [
      ['f32', 1],
      ['f32', 3],
      ['q8_0', 2],
    ] as const) {
      const rng = new Rng(rows + format.length);
      const [K, n] = [64, 13];
      const x = rng.uniform(rows * K, -2, 2);
      const gain = rng.uniform(K, 0.5, 1.5);
      const values = [rng.uniform(n * K, -1, 1), rng.uniform(n * K, -1, 1)];
      const weights = values.map((v) =>
        format === 'f32'
          ? { tensor: device.fromArray(v, [n, K], 'f32'), decoded: Float64Array.from(v) }
          : (() => {
              const bytes = encodeRows(v, n, K, 'q8_0');
              return {
                tensor: packedWeightFromBytes(device, 'q8_0', [n, K], bytes),
                decoded: decodeRows(bytes, n, K, 'q8_0'),
              };
            })(),
      );
      const out = device.empty([rows, n], 'f32');
      decodeMatvec(device, {
        x: device.fromArray(x, [rows, K], 'f32'),
        weights: weights.map((w) => w.tensor) as never,
        norm: { weight: device.fromArray(gain, [K], 'f32'), eps: 1e-6 },
        epilogue: 'swiglu',
        activation: 'gelu_tanh',
        out,
      });
      const norm = { weight: gain, eps: 1e-6 };
      const [gate, up] = weights.map((w) => normMatvecReference(x, rows, K, norm, w.decoded, n));
      const expected = gate.map((g, i) => geluTanh(g) * up[i]);
      await expectKernel(`geglu ${format} rows ${rows}`, { out: { actual: out, expected } }, tolerance);
    }
  });

  it('adds RMSNorm(x) * weight into the residual rows (odd width), and scales embeddings (f32 and Q8_0 tables)', async () => {
    const rng = new Rng(7);
    const [rows, width] = [3, 37];
    const x = rng.uniform(rows * width, -3, 3);
    const weight = rng.uniform(width, 0.5, 2);
    const start = rng.uniform(rows * width, -1, 1);
    const out = device.fromArray(start, [rows, width], 'f32');
    decodeNormAdd(device, {
      x: device.fromArray(x, [rows, width], 'f32'),
      weight: device.fromArray(weight, [width], 'f32'),
      eps: 1e-6,
      out,
    });
    const expected = new Float64Array(rows * width);
    for (let r = 0; r < rows; r++) {
      let squares = 0;
      for (let i = 0; i < width; i++) squares += x[r * width + i] ** 2;
      const inverse = 1 / Math.sqrt(squares / width + 1e-6);
      for (let i = 0; i < width; i++)
        expected[r * width + i] = start[r * width + i] + x[r * width + i] * inverse * weight[i];
    }
    const table = rng.uniform(9 * width, -1, 1);
    const hidden = device.empty([2, width], 'f32');
    decodeEmbed(
      device,
      device.fromArray(table, [9, width], 'f32'),
      device.fromArray([4, 8], [2], 'i32'),
      hidden,
      6.08,
    );
    const embedded = Float64Array.from({ length: 2 * width }, (_, i) => {
      const id = i < width ? 4 : 8;
      return table[id * width + (i % width)] * Math.fround(6.08);
    });
    // A packed (Q8_0) table: the gather, then the scale.
    const packedBytes = encodeRows(rng.uniform(9 * 64, -1, 1), 9, 64, 'q8_0');
    const packedValues = decodeRows(packedBytes, 9, 64, 'q8_0');
    const fromPacked = device.empty([2, 64], 'f32');
    decodeEmbed(
      device,
      packedWeightFromBytes(device, 'q8_0', [9, 64], packedBytes),
      device.fromArray([4, 8], [2], 'i32'),
      fromPacked,
      6.08,
    );
    const packedExpected = Float64Array.from(
      { length: 128 },
      (_, i) => packedValues[(i < 64 ? 4 : 8) * 64 + (i % 64)] * Math.fround(6.08),
    );
    await expectKernel(
      'norm add, scaled embedding',
      {
        out: { actual: out, expected },
        embedded: { actual: hidden, expected: embedded },
        packed: { actual: fromPacked, expected: packedExpected },
      },
      tolerance,
    );
  });

  it('soft-caps the final logits in place, and the attention scores (cap tanh(s / cap))', async () => {
    const rng = new Rng(8);
    const values = rng.uniform(50, -40, 40);
    const logits = device.fromArray(values, [2, 25], 'f32');
    decodeSoftcap(device, logits, 3);
    const capped = values.map((v) => 3 * Math.tanh(v / 3));
    // Attention: one row, 2 heads over 1 key head, head dim 16, scores soft-capped at 0.5.
    const [rows, heads, kvHeads, headDim, slot] = [1, 2, 1, 16, 6];
    const capacity = slot + 2;
    const width = (heads + 2 * kvHeads) * headDim;
    const angles = Array.from({ length: capacity * 8 }, (_, i) => Math.floor(i / 8) * 0.1 * ((i % 8) + 1));
    const cos = Float32Array.from(angles, Math.cos);
    const sin = Float32Array.from(angles, Math.sin);
    const qkv = rng.uniform(rows * width, -2, 2);
    const cacheSize = rows * capacity * kvHeads * headDim;
    const keysHost = rng.uniform(cacheSize, -2, 2);
    const valuesHost = rng.uniform(cacheSize, -1, 1);
    const keys = device.fromArray(keysHost, [rows, capacity, kvHeads, headDim], 'f32');
    const valuesGpu = device.fromArray(valuesHost, [rows, capacity, kvHeads, headDim], 'f32');
    const out = device.empty([rows, heads * headDim], 'f32');
    decodeAttention(device, {
      qkv: device.fromArray(qkv, [rows, width], 'f32'),
      cos: device.fromArray(cos, [capacity, 8], 'f32'),
      sin: device.fromArray(sin, [capacity, 8], 'f32'),
      padding: device.fromArray([0], [1], 'u32'),
      keys,
      values: valuesGpu,
      out,
      heads,
      kvHeads,
      slot,
      scale: 0.25,
      softcap: 0.5,
    });
    const common = {
      rows,
      heads,
      kvHeads,
      headDim,
      capacity,
      slot,
      padding: [0],
      scale: 0.25,
      qkv,
      cos,
      sin,
    };
    const expected = decodeAttentionReference({
      ...common,
      keys: keysHost,
      values: valuesHost,
      softcap: 0.5,
    });
    const uncapped = decodeAttentionReference({ ...common, keys: keysHost, values: valuesHost });
    // The cap must matter at this size, or the check would pass without it.
    expect(Math.max(...expected.out.map((v, i) => Math.abs(v - uncapped.out[i])))).toBeGreaterThan(1e-2);
    await expectKernel(
      'softcap',
      { logits: { actual: logits, expected: capped }, attention: { actual: out, expected: expected.out } },
      tolerance,
    );
  });
});
