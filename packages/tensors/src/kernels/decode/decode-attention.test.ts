import { Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeAttention } from './decode-attention.js';
import { decodeAttentionReference } from './reference.js';

let device: Device;
const sharedDevice = () => device;
beforeAll(async () => {
  device = await createDevice();
});

const tolerance = { rtol: 2e-5, atol: 2e-5 };

describe('decodeAttention', () => {
  const run = async (
    label: string,
    options: {
      rows: number;
      heads: number;
      kvHeads: number;
      headDim: number;
      slot: number;
      padding: number[];
      qkNorm: boolean;
      seed: number;
      lanes?: number;
      window?: number;
      /** Another device (one with WebGPU's default limits); default the shared one. */
      target?: Device;
    },
  ) => {
    const device = options.target ?? sharedDevice();
    const { rows, heads, kvHeads, headDim, slot, padding } = options;
    const capacity = slot + 3;
    const rng = new Rng(options.seed);
    const width = (heads + 2 * kvHeads) * headDim;
    const positions = capacity;
    const angles = Array.from(
      { length: positions * (headDim / 2) },
      (_, i) => Math.floor(i / (headDim / 2)) * 0.1 * ((i % (headDim / 2)) + 1),
    );
    const cos = Float32Array.from(angles, Math.cos);
    const sin = Float32Array.from(angles, Math.sin);
    const qkv = rng.uniform(rows * width, -1, 1);
    const cacheSize = rows * capacity * kvHeads * headDim;
    const keysHost = rng.uniform(cacheSize, -1, 1);
    const valuesHost = rng.uniform(cacheSize, -1, 1);
    const qNorm = rng.uniform(headDim, 0.5, 1.5);
    const kNorm = rng.uniform(headDim, 0.5, 1.5);
    const keys = device.fromArray(keysHost, [rows, capacity, kvHeads, headDim], 'f32');
    const values = device.fromArray(valuesHost, [rows, capacity, kvHeads, headDim], 'f32');
    const out = device.empty([rows, heads * headDim], 'f32');
    const scale = 1 / Math.sqrt(headDim);
    decodeAttention(device, {
      qkv: device.fromArray(qkv, [rows, width], 'f32'),
      cos: device.fromArray(cos, [positions, headDim / 2], 'f32'),
      sin: device.fromArray(sin, [positions, headDim / 2], 'f32'),
      padding: device.fromArray(padding, [rows], 'u32'),
      keys,
      values,
      qkNorm: options.qkNorm
        ? {
            q: device.fromArray(qNorm, [headDim], 'f32'),
            k: device.fromArray(kNorm, [headDim], 'f32'),
            eps: 1e-6,
          }
        : null,
      out,
      heads,
      kvHeads,
      slot,
      scale,
      ...(options.lanes ? { lanes: options.lanes } : {}),
      window: options.window,
    });
    const expected = decodeAttentionReference({
      window: options.window,
      rows,
      heads,
      kvHeads,
      headDim,
      capacity,
      slot,
      padding,
      scale,
      qkv,
      cos,
      sin,
      keys: keysHost,
      values: valuesHost,
      qkNorm: options.qkNorm ? { q: qNorm, k: kNorm, eps: 1e-6 } : null,
    });
    await expectKernel(
      label,
      {
        out: { actual: out, expected: expected.out },
        keys: { actual: keys, expected: expected.keys },
        values: { actual: values, expected: expected.values },
      },
      tolerance,
    );
  };

  it('one row, grouped-query heads, a cache longer than one tile', async () => {
    await run('rows 1', {
      rows: 1,
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      slot: 70,
      padding: [0],
      qkNorm: false,
      seed: 1,
    });
  });

  it('left-padded rows, per-head q/k norm, head size over the lane count', async () => {
    await run('rows 3', {
      rows: 3,
      heads: 2,
      kvHeads: 1,
      headDim: 80,
      slot: 9,
      padding: [0, 4, 9],
      qkNorm: true,
      seed: 2,
    });
  });

  it('more lanes (16 split the keys, as on GPUs), fewer keys than lanes in a padded row', async () => {
    await run('rows 2, 16 lanes', {
      rows: 2,
      heads: 4,
      kvHeads: 4,
      headDim: 8,
      slot: 40,
      padding: [0, 30],
      qkNorm: false,
      seed: 3,
      lanes: 16,
    });
  });

  it('under WebGPU default limits (8 storage buffers): the q/k norm weights joined in one buffer, head size 80, GPU lanes', async () => {
    const limited = await createDevice({ adapterClass: 'discrete', limits: 'default' });
    try {
      expect(limited.info.limits.maxStorageBuffersPerShaderStage).toBe(8);
      limited.startProfile();
      await run('default limits, joined norms', {
        rows: 3,
        heads: 4,
        kvHeads: 2,
        headDim: 80,
        slot: 11,
        padding: [0, 4, 11],
        qkNorm: true,
        seed: 6,
        target: limited,
      });
      const keys = (await limited.stopProfile()).keys.map((entry) => entry.name);
      expect(keys.filter((key) => key.startsWith('decode:attention'))).toEqual([
        'decode:attention:80:qknorm:32:joint',
      ]);
    } finally {
      limited.destroy();
    }
  });

  it('a sliding window (Mistral): keys from the window start or the padding, whichever is later', async () => {
    // Row 0 sees slots 27..36; row 1 is padded past the window start (from 30); row 2 slots 27..36.
    await run('window 10', {
      rows: 3,
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      slot: 36,
      padding: [0, 30, 5],
      qkNorm: false,
      seed: 4,
      window: 10,
    });
    await run('window 10, 16 lanes', {
      rows: 2,
      heads: 2,
      kvHeads: 2,
      headDim: 8,
      slot: 36,
      padding: [0, 30],
      qkNorm: false,
      seed: 5,
      lanes: 16,
      window: 10,
    });
  });
});
