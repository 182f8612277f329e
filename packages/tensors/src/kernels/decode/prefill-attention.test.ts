import { Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { attention } from '../attention/attention.js';
import { prefillAppend, prefillAttention } from './prefill-attention.js';
import { decodeAttentionReference } from './reference.js';

let device: Device;
const sharedDevice = () => device;
beforeAll(async () => {
  device = await createDevice();
});

interface Case {
  rows: number;
  steps: number;
  start: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  padding: number[];
  qkNorm: boolean;
  seed: number;
  lanes?: number;
  /** prefillAppend (keys into the cache, rotated queries out) and the attention op, not prefillAttention. */
  append?: boolean;
  /** Another device (one with WebGPU's default limits); default the shared one. */
  target?: Device;
}

/**
 * The prompt's attention against the float64 decode reference run one position at a time
 * (each step writes its key and value, then attends over the cache so far): outputs and caches.
 */
async function check(label: string, c: Case): Promise<void> {
  const device = c.target ?? sharedDevice();
  const { rows, steps, start, heads, kvHeads, headDim, padding } = c;
  const capacity = start + steps + 2;
  const rng = new Rng(c.seed);
  const width = (heads + 2 * kvHeads) * headDim;
  const half = headDim / 2;
  const angles = Array.from(
    { length: capacity * half },
    (_, i) => Math.floor(i / half) * 0.1 * ((i % half) + 1),
  );
  const cos = Float32Array.from(angles, Math.cos);
  const sin = Float32Array.from(angles, Math.sin);
  const qkv = rng.uniform(rows * steps * width, -1, 1);
  const cacheSize = rows * capacity * kvHeads * headDim;
  let keysHost: ArrayLike<number> = rng.uniform(cacheSize, -1, 1);
  let valuesHost: ArrayLike<number> = rng.uniform(cacheSize, -1, 1);
  const qNorm = rng.uniform(headDim, 0.5, 1.5);
  const kNorm = rng.uniform(headDim, 0.5, 1.5);
  const keys = device.fromArray(keysHost, [rows, capacity, kvHeads, headDim], 'f32');
  const values = device.fromArray(valuesHost, [rows, capacity, kvHeads, headDim], 'f32');
  const out = device.empty([rows * steps, heads * headDim], 'f32');
  const scale = 1 / Math.sqrt(headDim);
  const qkNorm = c.qkNorm ? { q: qNorm, k: kNorm, eps: 1e-6 } : null;
  const inputs = {
    qkv: device.fromArray(qkv, [rows * steps, width], 'f32'),
    cos: device.fromArray(cos, [capacity, half], 'f32'),
    sin: device.fromArray(sin, [capacity, half], 'f32'),
    padding: device.fromArray(padding, [rows], 'u32'),
    keys,
    values,
    qkNorm: qkNorm
      ? {
          q: device.fromArray(qNorm, [headDim], 'f32'),
          k: device.fromArray(kNorm, [headDim], 'f32'),
          eps: 1e-6,
        }
      : null,
    heads,
    kvHeads,
    start,
    steps,
  };
  if (c.append) {
    const queries = device.empty([rows * steps, heads * headDim], 'f32');
    prefillAppend(device, { ...inputs, queries });
    const mask = new Uint32Array(rows * capacity);
    padding.forEach((pad, r) => {
      mask.fill(1, r * capacity + pad, (r + 1) * capacity);
    });
    const { output } = attention(queries.reshape([rows, steps, heads, headDim]), keys, values, {
      causal: true,
      scale,
      queryOffset: start,
      paddingMask: device.fromArray(mask, [rows, capacity], 'u32'),
    });
    device.copyBuffer(output.binding('test'), out.binding('test'));
  } else prefillAttention(device, { ...inputs, out, scale, ...(c.lanes ? { lanes: c.lanes } : {}) });
  const expected = new Float64Array(rows * steps * heads * headDim);
  for (let t = 0; t < steps; t++) {
    const stepQkv = new Float32Array(rows * width);
    for (let r = 0; r < rows; r++)
      stepQkv.set(qkv.subarray((r * steps + t) * width, (r * steps + t + 1) * width), r * width);
    const step = decodeAttentionReference({
      rows,
      heads,
      kvHeads,
      headDim,
      capacity,
      slot: start + t,
      padding,
      scale,
      qkv: stepQkv,
      cos,
      sin,
      keys: keysHost,
      values: valuesHost,
      qkNorm,
    });
    keysHost = step.keys;
    valuesHost = step.values;
    for (let r = 0; r < rows; r++) {
      // A position inside the row's padding sees no key: the kernel gives zeros.
      if (start + t < padding[r]) continue;
      const size = heads * headDim;
      expected.set(step.out.subarray(r * size, (r + 1) * size), (r * steps + t) * size);
    }
  }
  await expectKernel(
    label,
    {
      out: { actual: out, expected },
      keys: { actual: keys, expected: keysHost },
      values: { actual: values, expected: valuesHost },
    },
    { rtol: 2e-5, atol: 2e-5 },
  );
}

describe('prefillAttention', () => {
  it('under WebGPU default limits (8 storage buffers): the q/k norm weights joined in one buffer, prefillAttention and prefillAppend', async () => {
    const limited = await createDevice({ adapterClass: 'software', limits: 'default' });
    try {
      expect(limited.info.limits.maxStorageBuffersPerShaderStage).toBe(8);
      limited.startProfile();
      const joined = {
        rows: 2,
        steps: 7,
        start: 2,
        heads: 4,
        kvHeads: 2,
        padding: [0, 4],
        qkNorm: true,
        target: limited,
      };
      await check('default limits, qk norm, padded', { ...joined, headDim: 8, seed: 21 });
      await check('default limits, append, qk norm, head size 12', {
        ...joined,
        headDim: 12,
        seed: 22,
        append: true,
      });
      const keys = (await limited.stopProfile()).keys
        .map((entry) => entry.name)
        .filter((key) => key.includes('prefill'));
      expect(keys.sort()).toEqual([
        'decode:prefill-append:12:qknorm:queries:joint',
        'decode:prefill-append:8:qknorm:joint',
        'decode:prefill-attention:8:qknorm:8:joint',
      ]);
    } finally {
      limited.destroy();
    }
  });

  it('matches the decode reference run step by step: grouped heads, q/k norm, left padding, keys before the prompt', async () => {
    await check('qk norm, padded', {
      rows: 2,
      steps: 7,
      start: 2,
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      padding: [0, 4],
      qkNorm: true,
      seed: 11,
    });
  });

  it('16 positions per workgroup (GPUs take 32), one row, 20 steps: a partial block', async () => {
    await check('16 lanes', {
      rows: 1,
      steps: 20,
      start: 0,
      heads: 2,
      kvHeads: 1,
      headDim: 24,
      padding: [0],
      qkNorm: false,
      seed: 12,
      lanes: 16,
    });
  });

  it('prefillAppend + the attention op over the cache give the same outputs and caches (q/k norm, padding, keys before the prompt, head size 48)', async () => {
    await check('append, qk norm, padded', {
      rows: 2,
      steps: 9,
      start: 3,
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      padding: [0, 5],
      qkNorm: true,
      seed: 13,
      append: true,
    });
    await check('append, head size 48', {
      rows: 1,
      steps: 13,
      start: 0,
      heads: 3,
      kvHeads: 3,
      headDim: 48,
      padding: [0],
      qkNorm: false,
      seed: 14,
      append: true,
    });
  });

  it('prefillAppend without q/k norms: odd half head size, GQA, padding, keys before the prompt', async () => {
    await check('append, padded, GQA', {
      rows: 3,
      steps: 7,
      start: 2,
      heads: 6,
      kvHeads: 2,
      headDim: 6,
      padding: [0, 4, 1],
      qkNorm: false,
      seed: 15,
      append: true,
    });
  });

  it('prefillAppend without q/k norms at head sizes 8 (per head), 64 and 128 (by rotated vec4 pairs): GQA, padding, keys before the prompt, odd steps', async () => {
    await check('per head, head size 8', {
      rows: 3,
      steps: 11,
      start: 3,
      heads: 8,
      kvHeads: 4,
      headDim: 8,
      padding: [0, 5, 2],
      qkNorm: false,
      seed: 16,
      append: true,
    });
    await check('pairs, head size 64', {
      rows: 2,
      steps: 5,
      start: 1,
      heads: 4,
      kvHeads: 1,
      headDim: 64,
      padding: [3, 0],
      qkNorm: false,
      seed: 17,
      append: true,
    });
    await check('pairs, head size 128', {
      rows: 1,
      steps: 3,
      start: 0,
      heads: 2,
      kvHeads: 2,
      headDim: 128,
      padding: [0],
      qkNorm: false,
      seed: 18,
      append: true,
    });
  });
});
