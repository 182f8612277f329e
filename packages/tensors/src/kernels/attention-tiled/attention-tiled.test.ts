import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tuningFor } from '../../device/adapter-class.js';
import { createDevice } from '../../device/create-device.js';
import type { Device, KernelLaunch } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { type AttentionOptions, attention } from '../attention/attention.js';
import { attentionBackward } from '../attention/attention-backward.js';
import { attentionBackwardReference } from '../attention/backward-reference.js';
import { type AttentionDims, attentionReference } from '../attention/reference.js';
import { tiledAttentionBytes, useTiledAttention } from './attention-tiled.js';

// The GPU kernel runs on lavapipe by asking for it through the tuning; the device records the
// attention pipelines it dispatches so that a test fails if another kernel ran.
let device: Device;
const keys: string[] = [];
beforeAll(async () => {
  device = await createDevice({ tuning: { attentionKernel: 'workgroup' } });
  const dispatch = device.dispatch.bind(device);
  device.dispatch = (launch: KernelLaunch) => {
    keys.push(launch.key);
    return dispatch(launch);
  };
});
afterAll(() => device.destroy());

interface Case extends AttentionDims {
  options?: Omit<AttentionOptions, 'paddingMask'>;
  /** [batch, seqK] mask values (padding, or segment ids with options.segments). */
  mask?: number[];
  dtype?: 'f32' | 'f16';
}

async function check(c: Case, seed: number, withBackward = true) {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = c;
  const dtype = c.dtype ?? 'f32';
  const rng = new Rng(seed);
  const round = (a: Float32Array) => (dtype === 'f16' ? roundToF16(a) : a);
  const q = round(rng.uniform(batch * seqQ * headsQ * headDim, -1.5, 1.5));
  const k = round(rng.uniform(batch * seqK * headsKV * headDim, -1.5, 1.5));
  const v = round(rng.uniform(batch * seqK * headsKV * headDim, -1, 1));
  const mask = c.mask ? Uint32Array.from(c.mask) : undefined;
  const expected = attentionReference(q, k, v, c, { ...c.options, paddingMask: mask });
  keys.length = 0;
  await device.scope(async () => {
    const qT = device.fromArray(q, [batch, seqQ, headsQ, headDim], dtype);
    const kT = device.fromArray(k, [batch, seqK, headsKV, headDim], dtype);
    const vT = device.fromArray(v, [batch, seqK, headsKV, headDim], dtype);
    const maskT = mask ? device.fromArray(mask, [batch, seqK], 'u32') : undefined;
    const { output, logsumexp } = attention(qT, kT, vT, { ...c.options, paddingMask: maskT });
    const label = JSON.stringify({ ...c, mask: undefined });
    const tolerance = dtype === 'f16' ? { rtol: 1e-2, atol: 5e-3 } : { rtol: 1e-4, atol: 2e-5 };
    const outputData = await output.toArray();
    expectClose(outputData, expected.output, { ...tolerance, label: `output ${label}` });
    const finite = (x: ArrayLike<number>) =>
      Array.from(x, (value) => (Number.isFinite(value) ? value : 1e30));
    expectClose(finite(await logsumexp.toArray()), finite(expected.logsumexp), {
      rtol: 1e-4,
      atol: 1e-4,
      label: `logsumexp ${label}`,
    });
    if (withBackward) {
      // The backward rebuilds p from the forward's log-sum-exp (the tiled backward on this tuning).
      const grad = round(rng.uniform(q.length, -1, 1));
      const lse = await logsumexp.toArray();
      const result = attentionBackward(
        qT,
        kT,
        vT,
        output,
        logsumexp,
        device.fromArray(grad, qT.shape, dtype),
        {
          ...c.options,
          paddingMask: maskT ?? null,
        },
      );
      const reference = attentionBackwardReference(
        q,
        k,
        v,
        outputData,
        lse,
        grad,
        { batch, queries: seqQ, keys: seqK, heads: headsQ, kvHeads: headsKV, headDim },
        { ...c.options, paddingMask: mask ?? null },
      );
      for (const name of ['q', 'k', 'v'] as const) {
        expectClose(await result[name].toArray(), reference[name], {
          ...(dtype === 'f16' ? { rtol: 1e-2, atol: 5e-3 } : { rtol: 1e-4, atol: 5e-5 }),
          label: `d${name} ${label}`,
        });
      }
    }
  });
  expect(keys.filter((key) => key.startsWith('attention:tiled:'))).toHaveLength(1);
  if (withBackward) {
    expect(keys.filter((key) => key.startsWith('attention-backward:tiled:'))).toHaveLength(2);
  }
}

describe('workgroup-tiled attention, forward and backward', () => {
  it('is chosen by the GPU classes where head dim and workgroup memory allow, never on software', () => {
    const caps = (attentionKernel: 'lanes' | 'workgroup', storage = 16384) => ({
      maxComputeWorkgroupStorageSize: storage,
      maxComputeInvocationsPerWorkgroup: 256,
      tuning: { attentionKernel },
    });
    expect(useTiledAttention(caps(tuningFor('discrete').attentionKernel), 128)).toBe(true);
    expect(useTiledAttention(caps(tuningFor('integrated').attentionKernel), 64)).toBe(true);
    expect(useTiledAttention(caps(tuningFor('software').attentionKernel), 64)).toBe(false);
    // Head dims not a multiple of 4, and tiles larger than the adapter's workgroup memory, stay per-query.
    expect(useTiledAttention(caps('workgroup'), 6)).toBe(false);
    expect(tiledAttentionBytes(256)).toBe(18432);
    expect(useTiledAttention(caps('workgroup'), 256)).toBe(false);
    expect(useTiledAttention(caps('workgroup', 32768), 256)).toBe(true);
  });

  it('matches the float64 references: causal GQA at odd lengths', async () => {
    await check({ batch: 2, seqQ: 37, seqK: 37, headsQ: 4, headsKV: 2, headDim: 8 }, 1);
    await check({ batch: 1, seqQ: 5, seqK: 5, headsQ: 2, headsKV: 2, headDim: 12 }, 2);
  });

  it('padding, KV-cache offsets, rows that see nothing, non-causal', async () => {
    const mask = Array.from({ length: 2 * 21 }, (_, j) => (j % 7 === 3 || (j >= 21 && j < 25) ? 0 : 1));
    await check({ batch: 2, seqQ: 9, seqK: 21, headsQ: 2, headsKV: 1, headDim: 8, mask }, 3);
    await check(
      { batch: 1, seqQ: 19, seqK: 19, headsQ: 1, headsKV: 1, headDim: 8, options: { queryOffset: -2 } },
      4,
    );
    await check(
      {
        batch: 2,
        seqQ: 9,
        seqK: 21,
        headsQ: 2,
        headsKV: 1,
        headDim: 8,
        mask,
        options: { causal: false, scale: 0.3 },
      },
      5,
    );
  });

  it('segment ids, sliding window and soft-capping', async () => {
    const segments = [...Array(7).fill(1), ...Array(20).fill(2), ...Array(6).fill(3), 0, 0];
    await check(
      {
        batch: 1,
        seqQ: 35,
        seqK: 35,
        headsQ: 2,
        headsKV: 1,
        headDim: 8,
        mask: segments,
        options: { segments: true },
      },
      6,
    );
    await check(
      { batch: 1, seqQ: 40, seqK: 40, headsQ: 2, headsKV: 2, headDim: 8, options: { window: 5 } },
      7,
    );
    await check(
      { batch: 1, seqQ: 17, seqK: 17, headsQ: 2, headsKV: 1, headDim: 8, options: { softcap: 2 } },
      8,
    );
  });

  it('f16 inputs, computed in f32', async (context) => {
    requireF16(context, device.hasF16);
    await check({ batch: 1, seqQ: 20, seqK: 20, headsQ: 2, headsKV: 1, headDim: 8, dtype: 'f16' }, 9);
  });
});
