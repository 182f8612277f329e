import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { attention } from './attention.js';
import { keyLanesWidth } from './key-lanes.js';
import { type AttentionDims, type AttentionReferenceOptions, attentionReference } from './reference.js';
import { rowLanesWidth } from './row-lanes.js';

let device: Device;
/** The same adapter with the key-lanes kernel turned off: the row-per-invocation kernel runs. */
let rows: Device;
/** The same adapter with the row-lanes kernel (row-lanes.ts) turned off: f32 at head dims 4 and 8 take key lanes too. */
let keyLanesOnly: Device;
beforeAll(async () => {
  device = await createDevice();
  rows = await createDevice({ tuning: { attentionKeyLanesHeadDim: 0, promptAttentionChunk: 0 } });
  keyLanesOnly = await createDevice({ tuning: { promptAttentionChunk: 0 } });
});
afterAll(() => {
  rows.destroy();
  keyLanesOnly.destroy();
});

const keyLanes = () => keyLanesWidth(device, 8) > 0;

interface Case {
  dims: AttentionDims;
  options?: Omit<AttentionReferenceOptions, 'paddingMask'>;
  /** The [batch, seqK] mask: padding flags, or segment ids with options.segments. */
  mask?: number[];
  dtype?: 'f32' | 'f16';
}

/** Runs attention on `on` and compares output and log-sum-exp with the float64 reference; returns the kernel keys that ran. */
async function check(on: Device, c: Case, seed: number): Promise<string[]> {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = c.dims;
  const dtype = c.dtype ?? 'f32';
  const rng = new Rng(seed);
  const round = (a: Float32Array) => (dtype === 'f16' ? roundToF16(a) : a);
  const q = round(rng.normal(batch * seqQ * headsQ * headDim));
  const k = round(rng.normal(batch * seqK * headsKV * headDim));
  const v = round(rng.normal(batch * seqK * headsKV * headDim));
  const expected = attentionReference(q, k, v, c.dims, { ...c.options, paddingMask: c.mask });
  return on.scope(async () => {
    on.startProfile();
    const result = attention(
      on.fromArray(q, [batch, seqQ, headsQ, headDim], dtype),
      on.fromArray(k, [batch, seqK, headsKV, headDim], dtype),
      on.fromArray(v, [batch, seqK, headsKV, headDim], dtype),
      { ...c.options, paddingMask: c.mask ? on.fromArray(c.mask, [batch, seqK], 'i32') : undefined },
    );
    const output = await result.output.toArray();
    const lse = await result.logsumexp.toArray();
    const profile = await on.stopProfile();
    const tolerance = dtype === 'f16' ? { rtol: 5e-3, atol: 5e-3 } : { rtol: 1e-4, atol: 2e-5 };
    const label = `${JSON.stringify(c.dims)} ${JSON.stringify(c.options ?? {})} ${c.mask ? 'mask' : ''}`;
    expectClose(output, expected.output, { ...tolerance, label: `${label} output` });
    expectClose(lse, expected.logsumexp, { ...tolerance, label: `${label} logsumexp` });
    return profile.keys.map((key) => key.name);
  });
}

/** Padding on batch row 1's first keys and a hole, batch row 2 fully padded (its rows see no key). */
function padding(batch: number, seqK: number): number[] {
  const mask = new Array(batch * seqK).fill(1);
  for (let j = 0; j < Math.min(seqK - 1, 3); j++) mask[seqK + j] = 0;
  mask[Math.floor(seqK / 2)] = 0;
  if (batch > 2) mask.fill(0, 2 * seqK, 3 * seqK);
  return mask;
}

/** Segment ids of packed examples of the given lengths per batch row, then padding (0). */
function segments(rowsOfLengths: number[][], seq: number): number[] {
  return rowsOfLengths.flatMap((lengths) => {
    const row = new Array(seq).fill(0);
    let at = 0;
    lengths.forEach((length, n) => {
      row.fill(n + 1, at, Math.min(seq, at + length));
      at += length;
    });
    return row;
  });
}

describe('attention, row-lanes and key-lanes kernels (small head dims)', () => {
  it('is the software path for head dims up to attentionKeyLanesHeadDim where the adapter has subgroups', async () => {
    const expectsKeyLanes = device.gpu.features.has('subgroups') && device.info.adapterClass === 'software';
    expect(keyLanes()).toBe(expectsKeyLanes);
    expect(keyLanesWidth(device, device.tuning.attentionKeyLanesHeadDim + 1)).toBe(0);
    expect(keyLanesWidth(rows, 8)).toBe(0);
    // Row lanes: f32 at head dims that are multiples of 4 up to promptAttentionHeadDim, same adapters.
    expect(rowLanesWidth(device, 8, 'f32') > 0).toBe(
      expectsKeyLanes && device.tuning.promptAttentionHeadDim >= 8,
    );
    expect(rowLanesWidth(device, 6, 'f32')).toBe(0);
    expect(rowLanesWidth(device, 8, 'f16')).toBe(0);
    expect(rowLanesWidth(keyLanesOnly, 8, 'f32')).toBe(0);
  });

  for (const headDim of [8, 6, 4]) {
    for (const seqQ of [1, 7, 33, 70]) {
      it(`head dim ${headDim}, seq ${seqQ}: causal, padding, KV-cache offsets, GQA 1 and 3, full attention`, async () => {
        for (const group of [1, 3]) {
          const cases: Case[] = [
            { dims: { batch: 2, seqQ, seqK: seqQ, headsQ: 2 * group, headsKV: 2, headDim } },
            {
              dims: { batch: 3, seqQ, seqK: seqQ + 5, headsQ: 2 * group, headsKV: 2, headDim },
              mask: padding(3, seqQ + 5),
            },
            {
              dims: { batch: 1, seqQ, seqK: seqQ + 11, headsQ: group, headsKV: 1, headDim },
              options: { queryOffset: 3 },
            },
            {
              dims: { batch: 1, seqQ, seqK: seqQ, headsQ: group, headsKV: 1, headDim },
              options: { queryOffset: -2 },
            },
            {
              dims: { batch: 3, seqQ, seqK: seqQ + 3, headsQ: 2 * group, headsKV: 2, headDim },
              options: { causal: false, scale: 0.7 },
              mask: padding(3, seqQ + 3),
            },
          ];
          for (const [n, c] of cases.entries()) {
            const seed = headDim * 1000 + seqQ * 10 + group + n * 7;
            const keys = await check(device, c, seed);
            const keyLanesKeys = await check(keyLanesOnly, c, seed);
            if (keyLanes() && headDim <= device.tuning.attentionKeyLanesHeadDim) {
              const expected = rowLanesWidth(device, headDim, 'f32') > 0 ? 'row-lanes' : 'key-lanes';
              expect(keys.some((key) => key.includes(expected))).toBe(true);
              expect(keyLanesKeys.some((key) => key.includes('key-lanes'))).toBe(true);
            }
          }
        }
      });
    }
  }

  it('sliding windows, segment ids and soft-capping, on both kernels', async () => {
    const seq = 45;
    const packed = segments(
      [
        [5, 9, 1, 12],
        [20, 6],
      ],
      seq,
    );
    const cases: Case[] = [
      { dims: { batch: 2, seqQ: seq, seqK: seq, headsQ: 6, headsKV: 2, headDim: 8 }, options: { window: 1 } },
      {
        dims: { batch: 2, seqQ: seq, seqK: seq, headsQ: 6, headsKV: 2, headDim: 8 },
        options: { window: 16 },
      },
      {
        dims: { batch: 1, seqQ: 9, seqK: seq + 9, headsQ: 4, headsKV: 1, headDim: 4 },
        options: { window: 7 },
      },
      {
        dims: { batch: 2, seqQ: seq, seqK: seq, headsQ: 6, headsKV: 2, headDim: 8 },
        options: { segments: true },
        mask: packed,
      },
      {
        dims: { batch: 2, seqQ: seq, seqK: seq, headsQ: 2, headsKV: 2, headDim: 8 },
        options: { segments: true, causal: false, window: 5 },
        mask: packed,
      },
      {
        dims: { batch: 2, seqQ: seq, seqK: seq, headsQ: 4, headsKV: 2, headDim: 8 },
        options: { softcap: 1.5, scale: 2 },
      },
    ];
    for (const [n, c] of cases.entries()) {
      await check(device, c, 300 + n);
      await check(keyLanesOnly, c, 300 + n);
      await check(rows, c, 300 + n);
    }
  });

  it('computes f16 inputs in f32', async (context) => {
    requireF16(context, device.hasF16);
    for (const headDim of [8, 6]) {
      const dims = { batch: 3, seqQ: 20, seqK: 20, headsQ: 4, headsKV: 2, headDim };
      await check(device, { dims, mask: padding(3, 20), dtype: 'f16' }, 50 + headDim);
    }
  });
});
