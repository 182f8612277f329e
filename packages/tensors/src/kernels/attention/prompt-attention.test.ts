import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { promptAttention, promptAttentionLanes } from './prompt-attention.js';
import { type AttentionDims, type AttentionReferenceOptions, attentionReference } from './reference.js';

let device: Device;
/** The same adapter with chunks of 16 and 32 keys (two and four keys per lane), and the kernel up to head dim 128. */
let chunks: Device[];
let wide: Device;
beforeAll(async () => {
  device = await createDevice();
  chunks = [
    await createDevice({ tuning: { promptAttentionChunk: 16 } }),
    await createDevice({ tuning: { promptAttentionChunk: 32 } }),
  ];
  wide = await createDevice({ tuning: { promptAttentionHeadDim: 128 } });
});
afterAll(() => {
  for (const other of [...chunks, wide]) other.destroy();
});

interface Case {
  dims: AttentionDims;
  options?: Omit<AttentionReferenceOptions, 'paddingMask' | 'segments'>;
  /** [batch, seqK] u32: 1 = a real key, 0 = left padding. */
  mask?: number[];
}

/** promptAttention against the float64 reference; returns the kernel keys that ran. */
async function check(c: Case, seed: number, on: Device = device): Promise<string[]> {
  const device = on;
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = c.dims;
  const rng = new Rng(seed);
  const q = rng.normal(batch * seqQ * headsQ * headDim);
  const k = rng.normal(batch * seqK * headsKV * headDim);
  const v = rng.normal(batch * seqK * headsKV * headDim);
  const options = { causal: true, ...c.options };
  const expected = attentionReference(q, k, v, c.dims, { ...options, paddingMask: c.mask });
  return device.scope(async () => {
    device.startProfile();
    const output = promptAttention(
      device.fromArray(q, [batch, seqQ, headsQ, headDim], 'f32'),
      device.fromArray(k, [batch, seqK, headsKV, headDim], 'f32'),
      device.fromArray(v, [batch, seqK, headsKV, headDim], 'f32'),
      { ...options, ...(c.mask ? { paddingMask: device.fromArray(c.mask, [batch, seqK], 'u32') } : {}) },
    );
    const actual = await output.toArray();
    const profile = await device.stopProfile();
    const label = `${JSON.stringify(c.dims)} ${JSON.stringify(c.options ?? {})} ${c.mask ? 'mask' : ''}`;
    expectClose(actual, expected.output, { rtol: 1e-4, atol: 2e-5, label });
    return profile.keys.map((key) => key.name);
  });
}

/** Left padding as the tiled prefill masks it: row b's first pads[b] keys are not real tokens. */
function leftPadding(pads: number[], seqK: number): number[] {
  return pads.flatMap((pad) => Array.from({ length: seqK }, (_, j) => (j < pad ? 0 : 1)));
}

const chunked = () => promptAttentionLanes(device) > 0;

describe('promptAttention', () => {
  it('runs the chunked kernel on CPU rasterisers with subgroups, attention() elsewhere', () => {
    const software = device.info.adapterClass === 'software' && device.gpu.features.has('subgroups');
    expect(chunked()).toBe(software);
  });

  for (const headDim of [8, 48]) {
    it(`head dim ${headDim}: odd prompt lengths, GQA, keys before the prompt, partial blocks and chunks`, async () => {
      for (const seqQ of [1, 13, 37]) {
        const keys = await check(
          { dims: { batch: 1, seqQ, seqK: seqQ, headsQ: 4, headsKV: 2, headDim } },
          seqQ + headDim,
        );
        // Head dim 48 is past promptAttentionHeadDim (8): attention() runs.
        if (chunked()) expect(keys.some((key) => key.startsWith('attention:prompt:'))).toBe(headDim === 8);
        await check(
          {
            dims: { batch: 1, seqQ, seqK: seqQ + 6, headsQ: 3, headsKV: 1, headDim },
            options: { queryOffset: 6 },
          },
          seqQ + headDim + 1,
        );
      }
    });
  }

  it('chunks of 16 and 32 keys (two and four keys per lane) give the same attention', async () => {
    for (const on of chunks) {
      await check({ dims: { batch: 1, seqQ: 45, seqK: 45, headsQ: 4, headsKV: 2, headDim: 8 } }, 30, on);
      await check(
        {
          dims: { batch: 2, seqQ: 19, seqK: 26, headsQ: 2, headsKV: 2, headDim: 8 },
          options: { queryOffset: 7, window: 5 },
          mask: leftPadding([2, 0], 26),
        },
        31,
        on,
      );
    }
  });

  it('left-padded rows over a cache with unfilled slots: rows inside their padding give zeros', async () => {
    // Row 2's first 9 queries sit in its padding and see no key; the cache's last 3 slots are past the prompt.
    await check(
      {
        dims: { batch: 3, seqQ: 11, seqK: 14, headsQ: 4, headsKV: 2, headDim: 8 },
        options: { queryOffset: 0 },
        mask: leftPadding([0, 4, 9], 14),
      },
      21,
    );
  });

  it("the kernel at head dim 16 (with promptAttentionHeadDim raised): Gemma 2's sliding window and soft-cap, a cache offset, GQA", async () => {
    const keys = await check(
      {
        dims: { batch: 2, seqQ: 19, seqK: 23, headsQ: 4, headsKV: 2, headDim: 16 },
        options: { queryOffset: 4, window: 6, softcap: 5 },
        mask: leftPadding([0, 3], 23),
      },
      22,
      wide,
    );
    if (chunked()) expect(keys.some((key) => key.startsWith('attention:prompt:'))).toBe(true);
  });

  it('head dims 64 and 128 (Gemma, Qwen3, Llama) with the soft-cap and 3 query heads per key head', async () => {
    await check(
      { dims: { batch: 1, seqQ: 11, seqK: 13, headsQ: 6, headsKV: 2, headDim: 64 }, options: { softcap: 3 } },
      23,
    );
    await check({ dims: { batch: 1, seqQ: 21, seqK: 21, headsQ: 6, headsKV: 2, headDim: 128 } }, 24);
  });

  it('refuses bad options with their names', () => {
    device.scope(() => {
      const q = device.empty([1, 3, 2, 8], 'f32');
      const k = device.empty([1, 3, 1, 8], 'f32');
      expect(() => promptAttention(q, k, k, { window: 0 })).toThrow(/window 0 must be a positive/);
      expect(() => promptAttention(q, k, k, { softcap: -1 })).toThrow(/softcap -1 must be a positive/);
      expect(() => promptAttention(q, k, k, { queryOffset: 0.5 })).toThrow(/queryOffset 0.5/);
      expect(() => promptAttention(q, device.empty([1, 3, 3, 8], 'f32'), k)).toThrow(/heads|shapes differ/);
    });
  });

  it('a head dim that is not a multiple of 4 is left to attention()', async () => {
    const keys = await check(
      { dims: { batch: 2, seqQ: 9, seqK: 9, headsQ: 2, headsKV: 1, headDim: 6 } },
      25,
      wide,
    );
    expect(keys.some((key) => key.startsWith('attention:prompt:'))).toBe(false);
  });
});
