import { expectClose, f16Usable, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { sizeOf } from '../../tensor/shape.js';
import { type MatmulOptions, matmul } from './matmul.js';
import { matmulReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

interface Case {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: boolean;
}

/** Runs one product on `on` and compares it with the float64 reference. */
async function check(on: Device, testCase: Case, seed: number, tolerance = 2e-5): Promise<void> {
  const rng = new Rng(seed);
  const aData = rng.uniform(sizeOf(testCase.a));
  const bData = rng.uniform(sizeOf(testCase.b));
  const transposeB = testCase.transposeB ?? false;
  const n = transposeB ? testCase.b[testCase.b.length - 2] : testCase.b[testCase.b.length - 1];
  const biasData = testCase.bias ? rng.uniform(n) : undefined;
  const options = { transposeA: testCase.transposeA, transposeB, bias: biasData };
  const expected = matmulReference(aData, testCase.a, bData, testCase.b, options);
  await on.scope(async () => {
    const gpuOptions: MatmulOptions = { transposeA: testCase.transposeA, transposeB };
    if (biasData) gpuOptions.bias = on.fromArray(biasData, [n], 'f32');
    const out = matmul(
      on.fromArray(aData, testCase.a, 'f32'),
      on.fromArray(bData, testCase.b, 'f32'),
      gpuOptions,
    );
    expect(out.shape).toEqual(expected.shape);
    expect(out.dtype).toBe('f32');
    const label = JSON.stringify(testCase);
    expectClose(await out.toArray(), expected.data, { rtol: tolerance, atol: tolerance, label });
  });
}

// M x K x N shapes off every tile multiple, plus K % 4 == 0 cases that read operands in place.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 5, 3],
  [1, 36, 40],
  [33, 17, 65],
  [16, 32, 32],
  [41, 64, 33],
  [100, 7, 130],
  // Rows of 4 KiB: packed even where they could be read in place.
  [9, 1024, 12],
];

describe('matmul', () => {
  for (const [m, k, n] of SHAPES) {
    it(`${m}x${k}x${n} in all four transpose layouts`, async () => {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          await check(
            device,
            {
              a: transposeA ? [k, m] : [m, k],
              b: transposeB ? [n, k] : [k, n],
              transposeA,
              transposeB,
            },
            m * 1000 + k * 10 + n,
          );
        }
      }
    });
  }

  it('gives zeros, or the bias, when K is 0', async () => {
    const bias = device.fromArray([1, 2, 3, 4, 5], [5], 'f32');
    const a = device.empty([3, 0], 'f32');
    const b = device.empty([0, 5], 'f32');
    expect(Array.from(await matmul(a, b).toArray())).toEqual(new Array(15).fill(0));
    expect(Array.from(await matmul(a, b, { bias }).toArray())).toEqual([
      1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5,
    ]);
    expect((await matmul(device.empty([2, 0, 3], 'f32'), b, { transposeA: true }).toArray()).length).toBe(30);
    expect(
      Array.from(await matmul(device.empty([0, 3], 'f32'), b, { transposeA: true, bias }).toArray()),
    ).toEqual([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
  });

  it('adds a bias in the epilogue', async () => {
    await check(device, { a: [33, 20], b: [20, 45], bias: true }, 1);
    await check(device, { a: [2, 9, 24], b: [48, 24], transposeB: true, bias: true }, 2);
    await check(device, { a: [2, 3, 5, 8], b: [2, 1, 8, 6], bias: true }, 3);
  });

  it('broadcasts batch dimensions', async () => {
    // b 2-D against a batched a (a weight), folded into M.
    await check(device, { a: [2, 3, 17, 12], b: [12, 9] }, 4);
    await check(device, { a: [3, 17, 12], b: [1, 9, 12], transposeB: true }, 5);
    // Batched on both sides, with broadcasting in both directions and transposes.
    await check(device, { a: [2, 1, 9, 12], b: [3, 12, 12] }, 6);
    await check(device, { a: [4, 12, 9], b: [4, 10, 12], transposeA: true, transposeB: true }, 7);
    await check(device, { a: [9, 12], b: [5, 12, 10] }, 8);
    await check(device, { a: [2, 3, 12, 9], b: [3, 12, 10], transposeA: true }, 9);
    await check(device, { a: [5, 1, 2, 6, 3], b: [4, 1, 3, 7] }, 10);
  });

  it('runs the kernel variants of other tunings', async () => {
    // The portable kernel (no subgroups, 2-D workgroups) used on GPUs, and other tile shapes.
    const tunings = [
      { matmulSubgroups: false, matmulTileRows: 3, matmulTileCols: 2, matmulWorkgroup: 64 },
      { matmulSubgroups: true, matmulTileRows: 16, matmulTileCols: 3, matmulWorkgroup: 8 },
    ];
    for (const tuning of tunings) {
      const other = await createDevice({ tuning });
      try {
        await check(other, { a: [20, 37], b: [70, 20], transposeA: true, transposeB: true }, 12);
        await check(other, { a: [2, 1, 9, 12], b: [3, 12, 10] }, 13);
      } finally {
        other.destroy();
      }
    }
  });

  it('multiplies by a chunked weight and writes chunked outputs', async () => {
    // 4 KiB bindings: b [100, 36] f32 (14,400 bytes) splits in chunks of 28 rows, the output
    // [2, 40, 100] in chunks of 10 rows, a [80, 36] in chunks of 28 rows.
    const small = await createDevice({ maxBindingBytes: 4096 });
    try {
      const rng = new Rng(20);
      const aData = rng.uniform(80 * 36);
      const bData = rng.uniform(100 * 36);
      const biasData = rng.uniform(100);
      const a = small.fromArray(aData, [2, 40, 36], 'f32');
      const b = small.fromArray(bData, [100, 36], 'f32');
      expect(a.chunked && b.chunked).toBe(true);
      const out = matmul(a, b, { transposeB: true, bias: small.fromArray(biasData, [100], 'f32') });
      expect(out.chunked).toBe(true);
      const expected = matmulReference(aData, [2, 40, 36], bData, [100, 36], {
        transposeB: true,
        bias: biasData,
      });
      expect(out.shape).toEqual([2, 40, 100]);
      expectClose(await out.toArray(), expected.data, { rtol: 2e-5, atol: 2e-5 });
      // K not a multiple of 4: every segment is packed, and packed copies respect the limit.
      const a2 = rng.uniform(70 * 30);
      const b2 = rng.uniform(90 * 30);
      const bias2 = rng.uniform(90);
      const out2 = matmul(small.fromArray(a2, [70, 30], 'f32'), small.fromArray(b2, [90, 30], 'f32'), {
        transposeB: true,
        bias: small.fromArray(bias2, [90], 'f32'),
      });
      const expected2 = matmulReference(a2, [70, 30], b2, [90, 30], { transposeB: true, bias: bias2 });
      expectClose(await out2.toArray(), expected2.data, { rtol: 2e-5, atol: 2e-5 });
      // A batch that does not fold into M needs every tensor in one binding.
      const chunkedA = small.fromArray(new Float32Array(2 * 40 * 36), [2, 40, 36], 'f32');
      const batchedB = small.fromArray(new Float32Array(2 * 36 * 4), [2, 36, 4], 'f32');
      expect(() => matmul(chunkedA, batchedB)).toThrow(
        /split in chunks are supported only when the product is one 2-D product/,
      );
      const wide = small.fromArray(new Float32Array(2 * 4 * 100), [2, 4, 100], 'f32');
      const tall = small.fromArray(new Float32Array(2 * 8 * 4), [2, 8, 4], 'f32');
      expect(() => matmul(tall, wide)).toThrow(/output .* exceeds one storage binding/);
      const batchedTransposed = small.fromArray(new Float32Array(2 * 36 * 40), [2, 36, 40], 'f32');
      expect(() =>
        matmul(batchedTransposed, small.fromArray(new Float32Array(36 * 5), [36, 5], 'f32'), {
          transposeA: true,
        }),
      ).toThrow(/split in chunks are supported only when the product is one 2-D product/);
    } finally {
      small.destroy();
    }
  });

  it('sums K blocks of a chunked a^T or b [K, N] into the output (tied LM head backward)', async () => {
    // 4 KiB bindings. dlogits [80, 150] (48,000 bytes) lies in chunks of 6 rows, the embedding
    // E [150, 36] in chunks of 28 rows, h [80, 36] in chunks of 28 rows.
    const small = await createDevice({ maxBindingBytes: 4096 });
    try {
      const rng = new Rng(25);
      const g = rng.uniform(80 * 150);
      const e = rng.uniform(150 * 36);
      const h = rng.uniform(80 * 36);
      const bias = rng.uniform(36);
      const gTensor = small.fromArray(g, [80, 150], 'f32');
      const eTensor = small.fromArray(e, [150, 36], 'f32');
      const hTensor = small.fromArray(h, [80, 36], 'f32');
      expect(gTensor.chunked && eTensor.chunked && hTensor.chunked).toBe(true);
      // dh = dlogits x E: K (= V) blocks at the chunks of E; a bias goes in once.
      const dh = matmul(gTensor, eTensor, { bias: small.fromArray(bias, [36], 'f32') });
      const dhExpected = matmulReference(g, [80, 150], e, [150, 36], { bias });
      expectClose(await dh.toArray(), dhExpected.data, { rtol: 2e-5, atol: 2e-5, label: 'dlogits x E' });
      // dE = dlogits^T x h: K (= tokens) blocks at the chunks of dlogits and h, written into a
      // chunked [V, D] whose rows follow the chunks of E.
      const de = matmul(gTensor, hTensor, { transposeA: true });
      expect(de.shape).toEqual([150, 36]);
      expect(de.chunks.map((c) => c.elements)).toEqual(eTensor.chunks.map((c) => c.elements));
      const deExpected = matmulReference(g, [80, 150], h, [80, 36], { transposeA: true });
      expectClose(await de.toArray(), deExpected.data, { rtol: 2e-5, atol: 2e-5, label: 'dlogits^T x h' });
      // Both transposed: K blocks of 25, 25 and 20 (a^T), column blocks of 14 (b), row blocks of
      // the output.
      const a3 = rng.uniform(70 * 40);
      const b3 = rng.uniform(90 * 70);
      const out3 = matmul(small.fromArray(a3, [70, 40], 'f32'), small.fromArray(b3, [90, 70], 'f32'), {
        transposeA: true,
        transposeB: true,
      });
      const expected3 = matmulReference(a3, [70, 40], b3, [90, 70], { transposeA: true, transposeB: true });
      expectClose(await out3.toArray(), expected3.data, { rtol: 2e-5, atol: 2e-5, label: 'a^T b^T' });
      if (f16Usable(small.hasF16)) {
        // f16: E [60, 100] in chunks of 20 rows, the output [30, 100] in chunks of 20 rows; the
        // partial sums are stored as f16 between K blocks.
        const g16 = roundToF16(rng.uniform(30 * 60));
        const e16 = roundToF16(rng.uniform(60 * 100));
        const out16 = matmul(small.fromArray(g16, [30, 60], 'f16'), small.fromArray(e16, [60, 100], 'f16'));
        expect(out16.dtype).toBe('f16');
        expect(out16.chunked).toBe(true);
        const expected16 = matmulReference(g16, [30, 60], e16, [60, 100]);
        expectClose(await out16.toArray(), expected16.data, {
          rtol: 1e-2,
          atol: 1e-2,
          label: 'f16 K blocks',
        });
      }
    } finally {
      small.destroy();
    }
  });

  it('computes f16 tensors in f32 and rounds the result', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(30);
    // N = 32 stores vec4<f16>, N = 33 one value at a time. Five rows keep the tile (and the
    // kernels lavapipe compiles) small.
    for (const n of [32, 33]) {
      const aData = roundToF16(rng.uniform(5 * 40));
      const bData = roundToF16(rng.uniform(n * 40));
      const biasData = roundToF16(rng.uniform(n));
      const out = matmul(device.fromArray(aData, [5, 40], 'f16'), device.fromArray(bData, [n, 40], 'f16'), {
        transposeB: true,
        bias: device.fromArray(biasData, [n], 'f16'),
      });
      expect(out.dtype).toBe('f16');
      const expected = matmulReference(aData, [5, 40], bData, [n, 40], { transposeB: true, bias: biasData });
      expectClose(await out.toArray(), roundToF16(expected.data), { rtol: 2e-3, atol: 2e-3 });
    }
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    // Tall and thin: more row tiles than one grid dimension holds.
    const m = 65_535 * device.tuning.matmulTileRows + 4 * 257;
    const k = 4;
    const n = 3;
    const aData = new Float32Array(m * k).map((_, i) => (i % 13) - 6);
    const bData = new Float32Array(k * n).map((_, i) => i - 5);
    const out = await matmul(
      device.fromArray(aData, [m, k], 'f32'),
      device.fromArray(bData, [k, n], 'f32'),
    ).toArray();
    for (const row of [0, 1, 65_535 * device.tuning.matmulTileRows, m - 2, m - 1]) {
      for (let col = 0; col < n; col++) {
        let sum = 0;
        for (let i = 0; i < k; i++) sum += aData[row * k + i] * bData[i * n + col];
        expect(out[row * n + col]).toBe(sum);
      }
    }
  });

  it('rejects operands that do not fit', () => {
    const a = device.fromArray(new Float32Array(6), [2, 3], 'f32');
    const b = device.fromArray(new Float32Array(8), [4, 2], 'f32');
    expect(() => matmul(a, b)).toThrow(/inner dimensions differ, K = 3 for a and 4 for b/);
    expect(() => matmul(a, device.fromArray(new Float32Array(3), [3], 'f32'))).toThrow(/rank >= 2/);
    expect(() => matmul(a, device.fromArray(new Int32Array(6), [3, 2], 'i32'))).toThrow(/dtypes differ/);
    const ints = device.fromArray(new Int32Array(6), [2, 3], 'i32');
    expect(() => matmul(ints, device.fromArray(new Int32Array(6), [3, 2], 'i32'))).toThrow(/f32 and f16/);
    const c = device.fromArray(new Float32Array(6), [3, 2], 'f32');
    expect(() => matmul(a, c, { bias: device.fromArray(new Float32Array(3), [3], 'f32') })).toThrow(
      /bias must be f32\[2\]/,
    );
    expect(() =>
      matmul(
        device.fromArray(new Float32Array(12), [2, 2, 3], 'f32'),
        device.fromArray(new Float32Array(18), [3, 3, 2], 'f32'),
      ),
    ).toThrow(/batch dimensions \[2\] and \[3\] cannot be broadcast/);
  });
});

describe('matmul operands read in place along their rows', () => {
  it('reads a^T [K, M] and b [K, N] without packing copies (a linear layer backward)', async () => {
    // dW = dy^T x and dx = dy W: rows a multiple of 4, K a multiple of 4.
    const cases: Case[] = [
      { a: [48, 20], b: [48, 36], transposeA: true },
      { a: [20, 48], b: [48, 36] },
      { a: [48, 20], b: [48, 36], transposeA: true, bias: true },
      { a: [2, 3, 12, 24], b: [24, 16] },
      { a: [4, 16, 8], b: [4, 16, 12], transposeA: true },
      { a: [4, 16, 8], b: [1, 16, 12], transposeA: true },
      // Columns past N in the last tile (N = 4) and rows past M (M = 28 is not a tile multiple).
      { a: [8, 28], b: [8, 4], transposeA: true },
    ];
    for (const [i, testCase] of cases.entries()) {
      const before = device.stats.dispatches;
      await check(device, testCase, 40 + i);
      // One fromArray per tensor writes no dispatch: only the product itself ran.
      expect(device.stats.dispatches - before, JSON.stringify(testCase)).toBe(1);
    }
  });

  it('still packs what it cannot read in place, and agrees with the packed path', async () => {
    // M = 10 is not a multiple of 4: a^T is packed; b [K, N] with N = 36 is read in place.
    const before = device.stats.dispatches;
    await check(device, { a: [16, 10], b: [16, 36], transposeA: true }, 50);
    expect(device.stats.dispatches - before).toBe(2);
    // K = 18 is not a multiple of 4: both packed.
    await check(device, { a: [18, 12], b: [18, 8], transposeA: true }, 51);
    // b [1020, 1032] f32 is over OUTER_OPERAND_MAX_BYTES (4 MiB): packed where the tuning does
    // not read it in K segments.
    const whole = await createDevice({ tuning: { matmulOuterSegments: false } });
    try {
      const large = whole.stats.dispatches;
      await check(whole, { a: [4, 1020], b: [1020, 1032] }, 55);
      expect(whole.stats.dispatches - large).toBe(2);
    } finally {
      whole.destroy();
    }
  });

  it('reads an operand over OUTER_OPERAND_MAX_BYTES in place in K segments added into the output (dh = dlogits E)', async () => {
    expect(device.tuning.matmulOuterSegments).toBe(device.info.adapterClass === 'software');
    const segmented = await createDevice({ tuning: { matmulOuterSegments: true } });
    try {
      // b [1036, 1032] f32 (4.3 MB): K segments of 1016 and 20 values, no copy; the bias once.
      let before = segmented.stats.dispatches;
      await check(segmented, { a: [13, 1036], b: [1036, 1032], bias: true }, 56, 1e-4);
      expect(segmented.stats.dispatches - before).toBe(2);
      // a^T [1036, 1032] (the weight gradient of a wide layer), M past the last row tile.
      before = segmented.stats.dispatches;
      await check(segmented, { a: [1036, 1032], b: [1036, 12], transposeA: true }, 57, 1e-4);
      expect(segmented.stats.dispatches - before).toBe(2);
      // Two rows (decoding) keep the small-M kernel, which reads b in place in one launch.
      before = segmented.stats.dispatches;
      await check(segmented, { a: [2, 1036], b: [1036, 1032] }, 59, 1e-4);
      expect(segmented.stats.dispatches - before).toBe(1);
    } finally {
      segmented.destroy();
    }
  });

  it('reads in place on the portable kernel (no subgroups) and in K blocks of chunked tensors', async () => {
    const portable = await createDevice({
      tuning: { matmulSubgroups: false, matmulTileRows: 4, matmulTileCols: 4, matmulWorkgroup: 64 },
    });
    try {
      const before = portable.stats.dispatches;
      await check(portable, { a: [64, 40], b: [64, 52], transposeA: true }, 52);
      await check(portable, { a: [40, 64], b: [64, 52] }, 53);
      expect(portable.stats.dispatches - before).toBe(2);
    } finally {
      portable.destroy();
    }
    const small = await createDevice({ maxBindingBytes: 4096 });
    try {
      // a [96, 40] f32 (15,360 bytes) in chunks of 24 rows: K blocks of 24 tokens, read in place.
      const rng = new Rng(54);
      const a = rng.uniform(96 * 40);
      const b = rng.uniform(96 * 20);
      const out = matmul(small.fromArray(a, [96, 40], 'f32'), small.fromArray(b, [96, 20], 'f32'), {
        transposeA: true,
      });
      const expected = matmulReference(a, [96, 40], b, [96, 20], { transposeA: true });
      expectClose(await out.toArray(), expected.data, { rtol: 2e-5, atol: 2e-5, label: 'chunked a^T b' });
    } finally {
      small.destroy();
    }
  });
});

describe('matmul epilogue: alpha and residual', () => {
  /** alpha a x b + bias + residual on `on`, against the float64 reference; returns the dispatches it took. */
  async function checkEpilogue(
    on: Device,
    testCase: Case & { alpha: number },
    seed: number,
  ): Promise<number> {
    const rng = new Rng(seed);
    const aData = rng.uniform(sizeOf(testCase.a));
    const bData = rng.uniform(sizeOf(testCase.b));
    const transposeB = testCase.transposeB ?? false;
    const n = transposeB ? testCase.b[testCase.b.length - 2] : testCase.b[testCase.b.length - 1];
    const biasData = testCase.bias ? rng.uniform(n) : undefined;
    const options = { transposeA: testCase.transposeA, transposeB, bias: biasData, alpha: testCase.alpha };
    const shape = matmulReference(aData, testCase.a, bData, testCase.b, options).shape;
    const residualData = rng.uniform(sizeOf(shape));
    const expected = matmulReference(aData, testCase.a, bData, testCase.b, {
      ...options,
      residual: residualData,
    });
    return on.scope(async () => {
      const a = on.fromArray(aData, testCase.a, 'f32');
      const b = on.fromArray(bData, testCase.b, 'f32');
      const residual = on.fromArray(residualData, shape, 'f32');
      const bias = biasData ? on.fromArray(biasData, [n], 'f32') : null;
      const before = on.stats.dispatches;
      const out = matmul(a, b, {
        transposeA: testCase.transposeA,
        transposeB,
        bias,
        residual,
        alpha: testCase.alpha,
      });
      const dispatches = on.stats.dispatches - before;
      expectClose(await out.toArray(), expected.data, {
        rtol: 2e-5,
        atol: 2e-5,
        label: JSON.stringify(testCase),
      });
      return dispatches;
    });
  }

  it('scales the product and adds bias and residual in the same dispatch', async () => {
    // A LoRA B product (x A^T) B^T * scaling + base output, and its transposed gradients.
    expect(await checkEpilogue(device, { a: [2, 24, 8], b: [36, 8], transposeB: true, alpha: 2 }, 60)).toBe(
      1,
    );
    expect(
      await checkEpilogue(device, { a: [24, 8], b: [33, 8], transposeB: true, bias: true, alpha: 0.5 }, 61),
    ).toBe(1);
    expect(await checkEpilogue(device, { a: [48, 20], b: [48, 36], transposeA: true, alpha: -1.5 }, 62)).toBe(
      1,
    );
    expect(await checkEpilogue(device, { a: [3, 9, 12], b: [3, 12, 16], alpha: 4 }, 63)).toBe(1);
    // One row (the small-rows kernel has no factor: the tiled kernel runs it).
    expect(await checkEpilogue(device, { a: [1, 16], b: [20, 16], transposeB: true, alpha: 2 }, 64)).toBe(1);
    // alpha 1 with a residual: the decoding kernel's fused residual, unchanged.
    expect(await checkEpilogue(device, { a: [1, 16], b: [20, 16], transposeB: true, alpha: 1 }, 65)).toBe(1);
  });

  it('scales every K segment of an operand read in place in segments and adds the residual once', async () => {
    const segmented = await createDevice({ tuning: { matmulOuterSegments: true } });
    try {
      expect(
        await checkEpilogue(segmented, { a: [9, 1036], b: [1036, 1032], bias: true, alpha: -0.75 }, 66),
      ).toBe(2);
    } finally {
      segmented.destroy();
    }
  });

  it('scales every K block of a chunked product and adds the residual once', async () => {
    const small = await createDevice({ maxBindingBytes: 4096 });
    try {
      // b [150, 36] in chunks of 28 rows: K blocks (a, in chunks of 6 rows, is packed per block);
      // the output [20, 36] fits one binding, so the residual is fused into the first block.
      await checkEpilogue(small, { a: [20, 150], b: [150, 36], alpha: 3, bias: true }, 66);
      // An output in chunks: the residual is added afterwards (one more dispatch).
      const dispatches = await checkEpilogue(
        small,
        { a: [40, 8], b: [60, 8], transposeB: true, alpha: 2 },
        67,
      );
      expect(dispatches).toBeGreaterThan(1);
    } finally {
      small.destroy();
    }
  });

  it('scales the product on GPU tunings whose tiled kernels have no factor (register kernel)', async () => {
    for (const matmulKernel of ['workgroup', 'subgroup'] as const) {
      const gpuLike = await createDevice({ tuning: { matmulKernel } });
      try {
        await checkEpilogue(gpuLike, { a: [2, 24, 8], b: [36, 8], transposeB: true, alpha: 2 }, 68);
        await checkEpilogue(
          gpuLike,
          { a: [48, 20], b: [48, 36], transposeA: true, alpha: -1.5, bias: true },
          69,
        );
      } finally {
        gpuLike.destroy();
      }
    }
  });

  it('rejects a factor that is not finite', () => {
    const a = device.fromArray(new Float32Array(4), [2, 2], 'f32');
    expect(() => matmul(a, a, { alpha: Number.NaN })).toThrow(/alpha must be a finite number/);
  });
});
