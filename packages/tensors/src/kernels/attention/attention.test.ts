import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { type AttentionOptions, attention } from './attention.js';
import { type AttentionDims, attentionReference, attentionRowReference } from './reference.js';

let device: Device;
/**
 * Loops over the head dim at run time. Unrolled kernels compile slowly on lavapipe (seconds for
 * d = 32 to 48, cold cache), so part of the matrix runs here: both variants are covered and the
 * file stays fast.
 */
let looped: Device;
/** Unrolled, every lane loading the key and value rows itself (no subgroupBroadcast, no key lanes). */
let unshared: Device;
beforeAll(async () => {
  device = await createDevice();
  looped = await createDevice({ tuning: { attentionUnrollHeadDim: 0 } });
  unshared = await createDevice({ tuning: { attentionSubgroups: false, attentionKeyLanesHeadDim: 0 } });
});
afterAll(() => {
  looped.destroy();
  unshared.destroy();
});

interface Variant {
  name: string;
  causal: boolean;
  mask: boolean;
  /** Extra cached keys before the queries (seqK = seqQ + extraKeys, default offset). */
  extraKeys: number;
  /** Explicit queryOffset, or undefined for the default. */
  queryOffset?: number;
  /** Sliding window, or undefined for none. */
  window?: number;
}

const VARIANTS: Variant[] = [
  { name: 'causal', causal: true, mask: false, extraKeys: 0 },
  { name: 'causal + padding', causal: true, mask: true, extraKeys: 0 },
  { name: 'causal, KV cache of 5 more keys + padding', causal: true, mask: true, extraKeys: 5 },
  {
    name: 'causal, queryOffset -2 (first queries see nothing)',
    causal: true,
    mask: false,
    extraKeys: 0,
    queryOffset: -2,
  },
  {
    name: 'causal, queryOffset 3 over 11 more keys',
    causal: true,
    mask: false,
    extraKeys: 11,
    queryOffset: 3,
  },
  { name: 'full + padding', causal: false, mask: true, extraKeys: 3 },
];

/** Left padding on batch row 1 (its first keys), a few holes elsewhere, and batch row 2 fully padded. */
function paddingMask(rng: Rng, batch: number, seqK: number): Int32Array {
  const mask = new Int32Array(batch * seqK).fill(1);
  for (let j = 0; j < Math.min(seqK - 1, 4); j++) mask[seqK + j] = 0;
  for (let n = 0; n < seqK >> 3; n++) mask[Math.floor(rng.next() * seqK)] = 0;
  if (batch > 2) mask.fill(0, 2 * seqK, 3 * seqK);
  return mask;
}

async function check(
  on: Device,
  dims: AttentionDims,
  variant: Variant,
  seed: number,
  dtype: 'f32' | 'f16' = 'f32',
) {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = dims;
  const rng = new Rng(seed);
  const round = (a: Float32Array) => (dtype === 'f16' ? roundToF16(a) : a);
  const qData = round(rng.normal(batch * seqQ * headsQ * headDim));
  const kData = round(rng.normal(batch * seqK * headsKV * headDim));
  const vData = round(rng.normal(batch * seqK * headsKV * headDim));
  const mask = variant.mask ? paddingMask(rng, batch, seqK) : undefined;
  const options = {
    causal: variant.causal,
    paddingMask: mask,
    queryOffset: variant.queryOffset,
    window: variant.window,
  };
  const expected = attentionReference(qData, kData, vData, dims, options);
  await on.scope(async () => {
    const gpuOptions: AttentionOptions = {
      causal: variant.causal,
      queryOffset: variant.queryOffset,
      window: variant.window,
    };
    if (mask) gpuOptions.paddingMask = on.fromArray(mask, [batch, seqK], 'i32');
    const { output, logsumexp } = attention(
      on.fromArray(qData, [batch, seqQ, headsQ, headDim], dtype),
      on.fromArray(kData, [batch, seqK, headsKV, headDim], dtype),
      on.fromArray(vData, [batch, seqK, headsKV, headDim], dtype),
      gpuOptions,
    );
    expect(output.shape).toEqual([batch, seqQ, headsQ, headDim]);
    expect(logsumexp.shape).toEqual([batch, headsQ, seqQ]);
    const tolerance = dtype === 'f16' ? { rtol: 5e-3, atol: 5e-3 } : { rtol: 1e-4, atol: 2e-5 };
    const label = `${variant.name} ${JSON.stringify(dims)}`;
    expectClose(await output.toArray(), expected.output, { ...tolerance, label: `${label} output` });
    expectClose(await logsumexp.toArray(), expected.logsumexp, { ...tolerance, label: `${label} logsumexp` });
  });
  return expected;
}

describe('attention', () => {
  for (const headDim of [8, 32, 64, 48]) {
    for (const seqQ of [1, 7, 33, 130]) {
      const tuning = headDim === 48 ? 'default tuning' : headDim === 8 ? 'unrolled, unshared' : 'looped';
      it(`head dim ${headDim} (${tuning}), seq ${seqQ}: GQA 1 and 3, padding, KV-cache offsets`, async () => {
        const on = headDim === 48 ? device : headDim === 8 ? unshared : looped;
        for (const group of [1, 3]) {
          for (const [n, variant] of VARIANTS.entries()) {
            const headsKV = 2;
            const batch = variant.mask ? 3 : 2;
            const dims = {
              batch,
              seqQ,
              seqK: seqQ + variant.extraKeys,
              headsQ: headsKV * group,
              headsKV,
              headDim,
            };
            await check(on, dims, variant, headDim * 1000 + seqQ * 10 + group + n * 7);
          }
        }
      });
    }
  }

  for (const seqQ of [33, 130]) {
    it(`sliding windows 1, 3 and 16 at seq ${seqQ}: GQA, padding, KV-cache offsets, every variant`, async () => {
      for (const [w, window] of [1, 3, 16].entries()) {
        const windowed: Variant[] = [
          { name: `window ${window}`, causal: true, mask: false, extraKeys: 0, window },
          { name: `window ${window} + padding`, causal: true, mask: true, extraKeys: 0, window },
          // KV-cache decoding: the queries are the last of seqK keys (default offset).
          {
            name: `window ${window}, KV cache of 40 more keys`,
            causal: true,
            mask: false,
            extraKeys: 40,
            window,
          },
          {
            name: `window ${window}, queryOffset 3 over 11 more keys`,
            causal: true,
            mask: false,
            extraKeys: 11,
            queryOffset: 3,
            window,
          },
          { name: `window ${window}, not causal`, causal: false, mask: false, extraKeys: 5, window },
        ];
        // Each device builds a different kernel variant: shared rows, unrolled, looped.
        const targets = [
          [device, 48],
          [unshared, 8],
          [looped, 32],
        ] as const;
        for (const [n, variant] of windowed.entries()) {
          const [on, headDim] = targets[(n + w) % targets.length];
          const dims = {
            batch: variant.mask ? 3 : 2,
            seqQ,
            seqK: seqQ + variant.extraKeys,
            headsQ: 6,
            headsKV: 2,
            headDim,
          };
          await check(on, dims, variant, 7000 + seqQ * 10 + window * 3 + n);
        }
      }
      // One decoding step (a single query) over a long cache, on every variant.
      for (const [on, headDim] of [
        [device, 48],
        [unshared, 8],
        [looped, 32],
      ] as const) {
        const dims = { batch: 1, seqQ: 1, seqK: seqQ, headsQ: 4, headsKV: 1, headDim };
        const variant = {
          name: 'decode step, window 16',
          causal: true,
          mask: false,
          extraKeys: 0,
          window: 16,
        };
        await check(on, dims, variant, 8000 + seqQ + headDim);
      }
    });
  }

  it('segment ids (neat packing): each query sees only keys of its own packed example', async () => {
    // Row 0: examples of 5, 9, 1 and 12 tokens then padding; row 1: 20 and 6 tokens, then padding.
    const seq = 33;
    const segments = new Int32Array(2 * seq);
    let at = 0;
    for (const lengths of [
      [5, 9, 1, 12],
      [20, 6],
    ]) {
      const start = at;
      lengths.forEach((length, n) => {
        segments.fill(n + 1, at, at + length);
        at += length;
      });
      at = start + seq;
    }
    for (const [n, [on, headDim]] of (
      [
        [device, 48],
        [unshared, 8],
        [looped, 32],
      ] as const
    ).entries()) {
      const dims = { batch: 2, seqQ: seq, seqK: seq, headsQ: 6, headsKV: 2, headDim };
      const rng = new Rng(600 + n);
      const [qData, kData, vData] = [dims.headsQ, dims.headsKV, dims.headsKV].map((heads) =>
        rng.normal(2 * seq * heads * headDim),
      );
      for (const causal of [true, false]) {
        const expected = attentionReference(qData, kData, vData, dims, {
          causal,
          paddingMask: segments,
          segments: true,
        });
        await on.scope(async () => {
          const { output, logsumexp } = attention(
            on.fromArray(qData, [2, seq, 6, headDim], 'f32'),
            on.fromArray(kData, [2, seq, 2, headDim], 'f32'),
            on.fromArray(vData, [2, seq, 2, headDim], 'f32'),
            { causal, paddingMask: on.fromArray(segments, [2, seq], 'i32'), segments: true },
          );
          const label = `segments, causal ${causal}, head dim ${headDim}`;
          expectClose(await output.toArray(), expected.output, { rtol: 1e-4, atol: 2e-5, label });
          expectClose(await logsumexp.toArray(), expected.logsumexp, { rtol: 1e-4, atol: 2e-5, label });
        });
      }
    }
    // The reference itself: the first token of example 2 (row 0, position 5) sees only itself.
    const dims = { batch: 1, seqQ: 8, seqK: 8, headsQ: 1, headsKV: 1, headDim: 4 };
    const kv = new Rng(9).normal(32);
    const mask = [1, 1, 1, 1, 1, 2, 2, 0];
    const row = attentionRowReference(
      kv,
      kv,
      kv,
      dims,
      { paddingMask: mask, segments: true },
      {
        batch: 0,
        query: 5,
        head: 0,
      },
    );
    expectClose(row.output, kv.subarray(20, 24), { rtol: 1e-12 });
    expect(() =>
      attention(
        device.fromArray(kv, [1, 8, 1, 4], 'f32'),
        device.fromArray(kv, [1, 8, 1, 4], 'f32'),
        device.fromArray(kv, [1, 8, 1, 4], 'f32'),
        { segments: true },
      ),
    ).toThrow(/segments needs paddingMask/);
  });

  it('sliding window: a window of 1 returns every query its own value row', async () => {
    const rng = new Rng(31);
    const qData = rng.normal(9 * 2 * 8);
    const kvData = rng.normal(9 * 2 * 8);
    const kv = device.fromArray(kvData, [1, 9, 2, 8], 'f32');
    const { output } = attention(device.fromArray(qData, [1, 9, 2, 8], 'f32'), kv, kv, { window: 1 });
    expectClose(await output.toArray(), kvData, { rtol: 1e-6, atol: 1e-7 });
  });

  it('gives zero rows (not NaN) and logsumexp +Infinity where every key is masked', async () => {
    const dims = { batch: 3, seqQ: 9, seqK: 9, headsQ: 2, headsKV: 1, headDim: 8 };
    const expected = await check(device, dims, VARIANTS[1], 99);
    // Batch row 2 is fully padded: its outputs are exactly zero.
    const rowSize = dims.seqQ * dims.headsQ * dims.headDim;
    expect(Array.from(expected.output.subarray(2 * rowSize)).every((x) => x === 0)).toBe(true);
    const q = device.fromArray(new Rng(1).normal(2 * 4 * 8), [1, 4, 2, 8], 'f32');
    const kv = device.fromArray(new Rng(2).normal(3 * 8), [1, 3, 1, 8], 'f32');
    const { output, logsumexp } = attention(q, kv, kv, {
      queryOffset: -2,
      paddingMask: device.fromArray([1, 0, 1], [1, 3], 'u32'),
    });
    const out = await output.toArray();
    const lse = await logsumexp.toArray();
    // Queries 0 and 1 sit at positions -2 and -1: no key. Query 2 sees key 0 only: output = v_0,
    // logsumexp = its score. Query 3 sees keys 0 and 2 (1 is padded).
    expect(Array.from(out.subarray(0, 2 * 2 * 8)).every((x) => x === 0)).toBe(true);
    expect(out.every((x) => Number.isFinite(x))).toBe(true);
    const [qData, kvData] = [await q.toArray(), await kv.toArray()];
    const dims4 = { batch: 1, seqQ: 4, seqK: 3, headsQ: 2, headsKV: 1, headDim: 8 };
    const options = { queryOffset: -2, paddingMask: [1, 0, 1] };
    for (const head of [0, 1]) {
      expect(lse[head * 4]).toBe(Infinity);
      expect(lse[head * 4 + 1]).toBe(Infinity);
      let score = 0;
      for (let c = 0; c < 8; c++) score += qData[(2 * 2 + head) * 8 + c] * kvData[c];
      expect(lse[head * 4 + 2]).toBeCloseTo(score / Math.sqrt(8), 5);
      expectClose(out.subarray((2 * 2 + head) * 8, (2 * 2 + head + 1) * 8), kvData.subarray(0, 8), {
        rtol: 1e-6,
      });
      const row = attentionRowReference(qData, kvData, kvData, dims4, options, { batch: 0, query: 3, head });
      expectClose(out.subarray((3 * 2 + head) * 8, (3 * 2 + head + 1) * 8), row.output, {
        rtol: 1e-5,
        atol: 1e-6,
      });
      expect(lse[head * 4 + 3]).toBeCloseTo(row.logsumexp, 5);
    }
  });

  it('computes f16 inputs in f32', async (context) => {
    requireF16(context, device.hasF16);
    for (const [on, headDim] of [
      [looped, 32],
      [device, 6],
    ] as const) {
      const dims = { batch: 3, seqQ: 20, seqK: 20, headsQ: 4, headsKV: 2, headDim };
      await check(on, dims, VARIANTS[1], 5 + headDim, 'f16');
    }
  });

  it('takes a custom scale and odd head dims', async () => {
    const dims = { batch: 1, seqQ: 17, seqK: 17, headsQ: 3, headsKV: 3, headDim: 5 };
    const rng = new Rng(8);
    const qData = rng.normal(17 * 3 * 5);
    const kData = rng.normal(17 * 3 * 5);
    const vData = rng.normal(17 * 3 * 5);
    const expected = attentionReference(qData, kData, vData, dims, { scale: 0.9 });
    const { output, logsumexp } = attention(
      device.fromArray(qData, [1, 17, 3, 5], 'f32'),
      device.fromArray(kData, [1, 17, 3, 5], 'f32'),
      device.fromArray(vData, [1, 17, 3, 5], 'f32'),
      { scale: 0.9 },
    );
    expectClose(await output.toArray(), expected.output, { rtol: 1e-4, atol: 2e-5 });
    expectClose(await logsumexp.toArray(), expected.logsumexp, { rtol: 1e-5, atol: 1e-5 });
  });

  it('handles seq 1024, 6 heads, head dim 48 (sampled rows)', async () => {
    const dims = { batch: 1, seqQ: 1024, seqK: 1024, headsQ: 6, headsKV: 2, headDim: 48 };
    const rng = new Rng(1024);
    const qData = rng.normal(1024 * 6 * 48);
    const kData = rng.normal(1024 * 2 * 48);
    const vData = rng.normal(1024 * 2 * 48);
    const { output, logsumexp } = attention(
      device.fromArray(qData, [1, 1024, 6, 48], 'f32'),
      device.fromArray(kData, [1, 1024, 2, 48], 'f32'),
      device.fromArray(vData, [1, 1024, 2, 48], 'f32'),
    );
    const out = await output.toArray();
    const lse = await logsumexp.toArray();
    for (const query of [0, 1, 7, 8, 31, 32, 33, 500, 511, 512, 1000, 1023]) {
      for (const head of [0, 2, 5]) {
        const row = attentionRowReference(qData, kData, vData, dims, {}, { batch: 0, query, head });
        const at = (query * 6 + head) * 48;
        expectClose(out.subarray(at, at + 48), row.output, {
          rtol: 1e-4,
          atol: 2e-5,
          label: `query ${query} head ${head}`,
        });
        expect(lse[head * 1024 + query]).toBeCloseTo(row.logsumexp, 4);
      }
    }
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const blockQ = device.tuning.attentionBlockQ;
    const seqQ = blockQ + 1; // two query blocks per head
    const batch = 2;
    const headsQ = Math.ceil(65_536 / (batch * 2)) + 1;
    const dims = { batch, seqQ, seqK: seqQ, headsQ, headsKV: headsQ, headDim: 4 };
    const rng = new Rng(65);
    const size = batch * seqQ * headsQ * 4;
    const qData = rng.normal(size);
    const kData = rng.normal(size);
    const vData = rng.normal(size);
    const shape = [batch, seqQ, headsQ, 4];
    const { output } = attention(
      device.fromArray(qData, shape, 'f32'),
      device.fromArray(kData, shape, 'f32'),
      device.fromArray(vData, shape, 'f32'),
    );
    const out = await output.toArray();
    for (const [b, query, head] of [
      [0, 0, 0],
      [1, seqQ - 1, headsQ - 1],
      [1, 3, headsQ >> 1],
      [0, seqQ - 1, headsQ - 2],
    ]) {
      const row = attentionRowReference(qData, kData, vData, dims, {}, { batch: b, query, head });
      const at = ((b * seqQ + query) * headsQ + head) * 4;
      expectClose(out.subarray(at, at + 4), row.output, { rtol: 1e-4, atol: 2e-5 });
    }
  });

  it('reports attention throughput at b=8, s=256, hq=6, d=48', async () => {
    const shape = [8, 256, 6, 48];
    const rng = new Rng(256);
    const size = 8 * 256 * 6 * 48;
    const q = device.fromArray(rng.normal(size), shape, 'f32');
    const k = device.fromArray(rng.normal(size), shape, 'f32');
    const v = device.fromArray(rng.normal(size), shape, 'f32');
    const run = () => {
      const { output, logsumexp } = attention(q, k, v);
      output.dispose();
      logsumexp.dispose();
    };
    run();
    await device.sync();
    const repeats = 3;
    const started = performance.now();
    for (let n = 0; n < repeats; n++) run();
    await device.sync();
    const ms = (performance.now() - started) / repeats;
    // Causal: half of the 8 * 6 * 256^2 score entries, 2 * 48 flops each for q.k and p.v.
    const flops = 8 * 6 * ((256 * 257) / 2) * 48 * 4;
    console.log(
      `attention forward b=8 s=256 hq=6 d=48 on ${device.info.device || device.info.vendor}: ${ms.toFixed(1)} ms, ${(flops / ms / 1e6).toFixed(2)} GFLOP/s`,
    );
    expect(ms).toBeGreaterThan(0);
  });

  it('rejects bad shapes, dtypes and masks', () => {
    const q = device.fromArray(new Float32Array(2 * 3 * 4 * 8), [2, 3, 4, 8], 'f32');
    const k = device.fromArray(new Float32Array(2 * 5 * 2 * 8), [2, 5, 2, 8], 'f32');
    expect(() => attention(q, k, k.reshape([2, 5, 16]))).toThrow(/k and v shapes differ/);
    expect(() => attention(q.reshape([6, 4, 8]), k, k)).toThrow(/\[batch, seq, heads, headDim\]/);
    const k3 = device.fromArray(new Float32Array(2 * 5 * 3 * 8), [2, 5, 3, 8], 'f32');
    expect(() => attention(q, k3, k3)).toThrow(/multiple of key\/value heads/);
    const kd = device.fromArray(new Float32Array(2 * 5 * 2 * 4), [2, 5, 2, 4], 'f32');
    expect(() => attention(q, kd, kd)).toThrow(/different head dims/);
    const kb = device.fromArray(new Float32Array(5 * 2 * 8), [1, 5, 2, 8], 'f32');
    expect(() => attention(q, kb, kb)).toThrow(/different batch sizes/);
    expect(() => attention(q, k, k, { paddingMask: device.fromArray([1, 1, 1], [1, 3], 'i32') })).toThrow(
      /paddingMask must be \[batch, seqK\] = \[2, 5\]/,
    );
    expect(() =>
      attention(q, k, k, { paddingMask: device.fromArray(new Float32Array(10), [2, 5], 'f32') }),
    ).toThrow(/u32 or i32/);
    const ki = device.fromArray(new Int32Array(2 * 5 * 2 * 8), [2, 5, 2, 8], 'i32');
    expect(() => attention(q, ki, ki)).toThrow(/one float dtype/);
    expect(() => attention(q, k, k, { queryOffset: 1.5 })).toThrow(/queryOffset/);
    expect(() => attention(q, k, k, { window: 0 })).toThrow(/window 0 must be a positive/);
    expect(() => attention(q, k, k, { window: 2.5 })).toThrow(/window 2.5 must be a positive/);
  });
});
