import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { attentionBackward } from './attention-backward.js';
import { type AttentionBackwardReferenceOptions, attentionBackwardReference } from './backward-reference.js';
import { attentionReference } from './reference.js';
import { rowLanesWidth } from './row-lanes.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

interface Case {
  batch: number;
  seqQ: number;
  seqK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  options?: AttentionBackwardReferenceOptions;
  /** Positions of the [batch, seqK] padding mask set to 0 (a mask is used when given). */
  padded?: number[];
  /** The [batch, seqK] mask as segment ids (packed sequences): the mask, with options.segments. */
  segments?: number[];
  dtype?: 'f32' | 'f16';
}

async function check(target: Device, c: Case, seed: number) {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = c;
  const dtype = c.dtype ?? 'f32';
  const rng = new Rng(seed);
  const round = (x: Float32Array) => (dtype === 'f16' ? roundToF16(x) : x);
  const q = round(rng.uniform(batch * seqQ * headsQ * headDim, -1.5, 1.5));
  const k = round(rng.uniform(batch * seqK * headsKV * headDim, -1.5, 1.5));
  const v = round(rng.uniform(batch * seqK * headsKV * headDim, -1, 1));
  const grad = round(rng.uniform(q.length, -1, 1));
  const mask = c.segments
    ? Uint32Array.from(c.segments)
    : c.padded
      ? new Uint32Array(batch * seqK).fill(1)
      : null;
  for (const at of c.padded ?? []) mask![at] = 0;
  const options = { ...c.options, paddingMask: mask };
  const dims = { batch, seqQ, seqK, headsQ, headsKV, headDim };
  const forward = attentionReference(q, k, v, dims, { ...options, paddingMask: mask ?? undefined });
  const output = round(Float32Array.from(forward.output));
  const lse = Float32Array.from(forward.logsumexp);
  const result = attentionBackward(
    target.fromArray(q, [batch, seqQ, headsQ, headDim], dtype),
    target.fromArray(k, [batch, seqK, headsKV, headDim], dtype),
    target.fromArray(v, [batch, seqK, headsKV, headDim], dtype),
    target.fromArray(output, [batch, seqQ, headsQ, headDim], dtype),
    target.fromArray(lse, [batch, headsQ, seqQ], 'f32'),
    target.fromArray(grad, [batch, seqQ, headsQ, headDim], dtype),
    { ...c.options, paddingMask: mask ? target.fromArray(mask, [batch, seqK], 'u32') : null },
  );
  const expected = attentionBackwardReference(
    q,
    k,
    v,
    output,
    lse,
    grad,
    { batch, queries: seqQ, keys: seqK, heads: headsQ, kvHeads: headsKV, headDim },
    options,
  );
  const tolerance = dtype === 'f16' ? { rtol: 1e-2, atol: 5e-3 } : { rtol: 1e-4, atol: 2e-5 };
  for (const name of ['q', 'k', 'v'] as const) {
    expectClose(await result[name].toArray(), expected[name], {
      ...tolerance,
      label: `d${name} ${JSON.stringify(c)}`,
    });
  }
}

/** Segment ids of packed rows: examples of the given lengths one after another, then padding (0). */
function packedSegments(rows: number[][], seq: number): number[] {
  return rows.flatMap((lengths) => {
    const ids = lengths.flatMap((length, n) => Array<number>(length).fill(n + 1));
    return [...ids, ...Array<number>(seq - ids.length).fill(0)];
  });
}

describe('attention-backward', () => {
  it('segment ids (neat packing): no gradient crosses packed examples, on both kernel variants', async () => {
    const plain = await createDevice({ tuning: { attentionSubgroups: false, promptAttentionChunk: 0 } });
    const segments = packedSegments(
      [
        [5, 9, 1, 12],
        [20, 6],
      ],
      29,
    );
    const dims = { batch: 2, seqQ: 29, seqK: 29, headsQ: 4, headsKV: 2, headDim: 8 };
    for (const [n, target] of [device, plain].entries()) {
      await check(target, { ...dims, segments, options: { segments: true } }, 40 + n);
      await check(
        target,
        { ...dims, headDim: 6, segments, options: { segments: true, causal: false } },
        50 + n,
      );
    }
    plain.destroy();
  });

  it('causal GQA at sequences 1, 7, 33 and head sizes 4, 8, 6', async () => {
    await check(device, { batch: 1, seqQ: 1, seqK: 1, headsQ: 1, headsKV: 1, headDim: 4 }, 1);
    await check(device, { batch: 2, seqQ: 7, seqK: 7, headsQ: 4, headsKV: 2, headDim: 8 }, 2);
    await check(device, { batch: 1, seqQ: 33, seqK: 33, headsQ: 6, headsKV: 3, headDim: 6 }, 3);
  });

  it('non-causal with a padding mask and a custom scale, fewer queries than keys', async () => {
    await check(
      device,
      {
        batch: 2,
        seqQ: 5,
        seqK: 9,
        headsQ: 2,
        headsKV: 1,
        headDim: 12,
        options: { causal: false, scale: 0.3 },
        padded: [2, 9, 17],
      },
      4,
    );
    await check(device, { batch: 1, seqQ: 3, seqK: 10, headsQ: 3, headsKV: 3, headDim: 5 }, 5);
    await check(
      device,
      { batch: 1, seqQ: 4, seqK: 6, headsQ: 2, headsKV: 1, headDim: 4, options: { queryOffset: 0 } },
      6,
    );
  });

  for (const seq of [33, 130]) {
    it(`sliding windows 1, 3 and 16 at seq ${seq}: GQA, KV-cache offsets, padding`, async () => {
      const plain = await createDevice({ tuning: { attentionSubgroups: false, promptAttentionChunk: 0 } });
      for (const [w, window] of [1, 3, 16].entries()) {
        const seed = seq * 100 + window * 10;
        const target = w % 2 === 0 ? device : plain;
        await check(
          target,
          { batch: 1, seqQ: seq, seqK: seq, headsQ: 4, headsKV: 2, headDim: 8, options: { window } },
          seed,
        );
        // KV-cache decoding: a few queries at the end of a longer run of keys.
        await check(
          target,
          {
            batch: 2,
            seqQ: 5,
            seqK: seq,
            headsQ: 6,
            headsKV: 2,
            headDim: 4,
            options: { window },
            padded: [3, seq + 1],
          },
          seed + 1,
        );
        await check(
          target,
          {
            batch: 1,
            seqQ: seq,
            seqK: seq + 9,
            headsQ: 3,
            headsKV: 1,
            headDim: 6,
            options: { window, queryOffset: 4 },
          },
          seed + 2,
        );
        await check(
          target,
          {
            batch: 1,
            seqQ: 9,
            seqK: seq,
            headsQ: 2,
            headsKV: 2,
            headDim: 8,
            options: { window, causal: false, queryOffset: 7 },
          },
          seed + 3,
        );
      }
      plain.destroy();
    });
  }

  it('gives zero gradients to queries that see no key and to padded keys', async () => {
    // Batch 1 pads every key: its queries see nothing (logsumexp +Infinity).
    await check(
      device,
      {
        batch: 2,
        seqQ: 3,
        seqK: 3,
        headsQ: 2,
        headsKV: 2,
        headDim: 4,
        options: { causal: false },
        padded: [3, 4, 5],
      },
      7,
    );
  });

  it('head rows longer than one vector per lane (head sizes 48 and 10), shared or loaded by every lane', async () => {
    // 48: 12 vec4s, 10: 10 scalars per row, both more than one per lane of a software workgroup,
    // so the subgroup variant loads several pieces per lane.
    const plain = await createDevice({ tuning: { attentionSubgroups: false, promptAttentionChunk: 0 } });
    for (const target of [device, plain]) {
      await check(target, { batch: 1, seqQ: 19, seqK: 19, headsQ: 2, headsKV: 1, headDim: 48 }, 10);
      await check(
        target,
        { batch: 2, seqQ: 7, seqK: 11, headsQ: 2, headsKV: 2, headDim: 10, options: { causal: false } },
        11,
      );
    }
    plain.destroy();
  });

  it('takes the subgroup variant exactly where the tuning and the adapter allow it', () => {
    const keys: string[] = [];
    const dispatch = device.dispatch.bind(device);
    device.dispatch = (launch) => {
      keys.push(launch.key);
      dispatch(launch);
    };
    try {
      const q = device.fromArray(new Float32Array(2 * 8), [1, 2, 1, 8], 'f32');
      const lse = device.fromArray(new Float32Array(2), [1, 1, 2], 'f32');
      attentionBackward(q, q, q, q, lse, q);
    } finally {
      device.dispatch = dispatch;
    }
    const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
    const expected =
      device.tuning.attentionSubgroups &&
      device.gpu.features.has('subgroups') &&
      (info?.subgroupMinSize ?? 0) >= device.tuning.attentionBlockQ;
    // The row-lanes kernels where rowLanesWidth allows them (f32, head dim 8 on CPU rasterisers),
    // else the per-row kernels, with subgroup loads where the tuning and the adapter allow them.
    const rowLanes = rowLanesWidth(device, 8, 'f32') > 0;
    expect(keys.some((key) => key.includes('row-lanes:dq'))).toBe(rowLanes);
    expect(keys.some((key) => key.includes('row-lanes:dkv'))).toBe(rowLanes);
    if (!rowLanes) {
      for (const pass of [':dq:', ':dkv:']) {
        expect(keys.find((key) => key.includes(pass))?.endsWith(expected ? ':sg' : ':lanes')).toBe(true);
      }
    }
  });

  it('dq, dk and dv by the row-lanes kernels and by the per-row kernels agree with float64 (padding, segments, windows, soft cap, GQA)', async () => {
    const perRow = await createDevice({ tuning: { promptAttentionChunk: 0 } });
    const segments = packedSegments(
      [
        [5, 9, 1, 12],
        [20, 6],
      ],
      37,
    );
    const cases: Case[] = [
      { batch: 2, seqQ: 37, seqK: 37, headsQ: 6, headsKV: 2, headDim: 8, padded: [0, 1, 40, 55] },
      { batch: 1, seqQ: 13, seqK: 29, headsQ: 3, headsKV: 1, headDim: 4, options: { window: 7 } },
      {
        batch: 2,
        seqQ: 37,
        seqK: 37,
        headsQ: 4,
        headsKV: 2,
        headDim: 8,
        segments,
        options: { segments: true },
      },
      {
        batch: 1,
        seqQ: 21,
        seqK: 21,
        headsQ: 2,
        headsKV: 2,
        headDim: 8,
        options: { softcap: 1.5, scale: 2 },
      },
      {
        batch: 2,
        seqQ: 11,
        seqK: 19,
        headsQ: 2,
        headsKV: 1,
        headDim: 8,
        options: { causal: false },
        padded: [3, 20],
      },
    ];
    for (const [n, c] of cases.entries()) {
      await check(device, c, 600 + n);
      await check(perRow, c, 600 + n);
    }
    perRow.destroy();
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const wide = await createDevice({ tuning: { attentionBlockQ: 1 } });
    await check(wide, { batch: 1, seqQ: 2, seqK: 2, headsQ: 33_000, headsKV: 33_000, headDim: 4 }, 8);
    wide.destroy();
  });

  it('computes f16 in f32', async (context) => {
    requireF16(context, device.hasF16);
    await check(device, { batch: 1, seqQ: 9, seqK: 9, headsQ: 2, headsKV: 1, headDim: 8, dtype: 'f16' }, 9);
  });

  it('rejects shapes that do not fit', () => {
    const q = device.fromArray(new Float32Array(2 * 3 * 4), [1, 2, 3, 4], 'f32');
    const k = device.fromArray(new Float32Array(2 * 2 * 4), [1, 2, 2, 4], 'f32');
    const lse = device.fromArray(new Float32Array(6), [1, 3, 2], 'f32');
    expect(() => attentionBackward(q, k, k, q, lse, q)).toThrow(/multiple of headsKV/);
    const k3 = device.fromArray(new Float32Array(2 * 3 * 4), [1, 2, 3, 4], 'f32');
    expect(() => attentionBackward(q, k3, k3, q, device.fromArray([1, 2], [2], 'f32'), q)).toThrow(
      /logsumexp/,
    );
    const lse2 = device.fromArray(new Float32Array(6), [1, 3, 2], 'f32');
    expect(() => attentionBackward(q, k3, k3, q, lse2, q, { window: 0 })).toThrow(
      /window 0 must be a positive/,
    );
  });
});
