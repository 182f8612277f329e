import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterClass } from '../../device/adapter-class.js';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { attentionBackward } from './attention-backward.js';
import { attentionBackwardReference } from './backward-reference.js';
import { packedStatsSpec } from './packed-stats.js';
import { attentionReference } from './reference.js';

/*
 * The attention backward on devices that hold WebGPU's default limits (8 storage buffers per
 * stage): its dk/dv pass would bind 9 with a padding mask, so logsumexp and delta come packed in
 * one buffer. Each kernel family (row-lanes and lanes on the software class, tiled on the GPU
 * classes) is checked against float64 at odd sizes, and against the same run on a device with
 * the adapter's limits (the separate buffers): bit for bit.
 */
const classes: AdapterClass[] = ['software', 'integrated', 'discrete'];
const limited = new Map<AdapterClass, Device>();
const full = new Map<AdapterClass, Device>();
beforeAll(async () => {
  for (const adapterClass of classes) {
    limited.set(adapterClass, await createDevice({ adapterClass, limits: 'default' }));
    full.set(adapterClass, await createDevice({ adapterClass }));
  }
});
afterAll(() => {
  for (const device of [...limited.values(), ...full.values()]) device.destroy();
});

interface Case {
  batch: number;
  seqQ: number;
  seqK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  padded: number[];
  segments?: boolean;
}

async function gradients(device: Device, c: Case, seed: number) {
  const { batch, seqQ, seqK, headsQ, headsKV, headDim } = c;
  const rng = new Rng(seed);
  const q = rng.uniform(batch * seqQ * headsQ * headDim, -1.5, 1.5);
  const k = rng.uniform(batch * seqK * headsKV * headDim, -1.5, 1.5);
  const v = rng.uniform(batch * seqK * headsKV * headDim, -1, 1);
  const grad = rng.uniform(q.length, -1, 1);
  const mask = new Uint32Array(batch * seqK).fill(1);
  for (const at of c.padded) mask[at] = 0;
  const dims = { batch, seqQ, seqK, headsQ, headsKV, headDim };
  const forward = attentionReference(q, k, v, dims, { paddingMask: mask });
  const output = Float32Array.from(forward.output);
  const lse = Float32Array.from(forward.logsumexp);
  device.startProfile();
  const result = attentionBackward(
    device.fromArray(q, [batch, seqQ, headsQ, headDim], 'f32'),
    device.fromArray(k, [batch, seqK, headsKV, headDim], 'f32'),
    device.fromArray(v, [batch, seqK, headsKV, headDim], 'f32'),
    device.fromArray(output, [batch, seqQ, headsQ, headDim], 'f32'),
    device.fromArray(lse, [batch, headsQ, seqQ], 'f32'),
    device.fromArray(grad, [batch, seqQ, headsQ, headDim], 'f32'),
    { paddingMask: device.fromArray(mask, [batch, seqK], 'u32') },
  );
  const actual = { q: await result.q.toArray(), k: await result.k.toArray(), v: await result.v.toArray() };
  const profile = await device.stopProfile();
  const expected = attentionBackwardReference(
    q,
    k,
    v,
    output,
    lse,
    grad,
    { batch, queries: seqQ, keys: seqK, heads: headsQ, kvHeads: headsKV, headDim },
    { paddingMask: mask },
  );
  return { actual, expected, keys: profile.keys.map((entry) => entry.name) };
}

const cases: [AdapterClass, 'row-lanes' | 'lanes' | 'tiled', Case][] = [
  // Head size 8 on the software class: the row-lanes kernels.
  [
    'software',
    'row-lanes',
    { batch: 2, seqQ: 13, seqK: 13, headsQ: 4, headsKV: 2, headDim: 8, padded: [0, 1, 15] },
  ],
  // Head size 12: the lanes kernels (one row per invocation).
  [
    'software',
    'lanes',
    { batch: 2, seqQ: 11, seqK: 11, headsQ: 3, headsKV: 1, headDim: 12, padded: [0, 13] },
  ],
  // The GPU classes: the tiled kernels (16 x 16 workgroups). The real head sizes (64 to 256)
  // compile in the null-backend sweep and run in the model-level tests of train and nn.
  [
    'integrated',
    'tiled',
    { batch: 2, seqQ: 19, seqK: 19, headsQ: 4, headsKV: 2, headDim: 20, padded: [0, 1, 2, 20] },
  ],
  ['discrete', 'tiled', { batch: 1, seqQ: 17, seqK: 17, headsQ: 2, headsKV: 1, headDim: 12, padded: [0, 3] }],
];

describe('attentionBackward under WebGPU default limits (logsumexp and delta packed)', () => {
  for (const [adapterClass, family, c] of cases) {
    it(`${adapterClass} class, ${family} kernels, head size ${c.headDim}: float64 reference, and bit for bit the separate buffers`, async () => {
      const device = limited.get(adapterClass)!;
      expect(device.info.limits.maxStorageBuffersPerShaderStage).toBe(8);
      const packed = await gradients(device, c, 7);
      for (const name of ['q', 'k', 'v'] as const) {
        expectClose(packed.actual[name], packed.expected[name], {
          rtol: 1e-4,
          atol: 2e-5,
          label: `d${name} ${adapterClass} ${JSON.stringify(c)}`,
        });
      }
      const backward = packed.keys.filter((key) => key.startsWith('attention-backward'));
      const ran = { 'row-lanes': ':row-lanes:', lanes: ':dkv:f32:', tiled: ':tiled:' }[family];
      expect(backward.some((key) => key.includes(ran))).toBe(true);
      expect(backward.filter((key) => !key.includes('packed'))).toEqual([]);
      const separate = await gradients(full.get(adapterClass)!, c, 7);
      if (full.get(adapterClass)!.info.limits.maxStorageBuffersPerShaderStage >= 9) {
        expect(separate.keys.some((key) => key.includes('packed'))).toBe(false);
      }
      for (const name of ['q', 'k', 'v'] as const) expect(packed.actual[name]).toEqual(separate.actual[name]);
    });
  }

  it('packedStatsSpec joins the two bindings and rewrites their reads; it refuses a kernel without them', () => {
    const spec = packedStatsSpec(
      {
        storage: [
          { name: 'lse', type: 'f32', access: 'read' },
          { name: 'delta', type: 'f32', access: 'read' },
          { name: 'out', type: 'f32', access: 'read_write' },
        ],
        workgroupSize: 8,
        body: 'out[i] = lse[row_stat] - delta[base + i] + lane_delta_0;',
      },
      'lse',
      'delta',
    );
    expect(spec.storage.map((binding) => `${binding.name}:${binding.type}`)).toEqual([
      'stats:vec2<f32>',
      'out:f32',
    ]);
    expect(spec.body).toBe('out[i] = stats[row_stat].x - stats[base + i].y + lane_delta_0;');
    expect(() =>
      packedStatsSpec(
        { storage: [{ name: 'x', type: 'f32', access: 'read' }], workgroupSize: 8, body: '' },
        'lse',
        'delta',
      ),
    ).toThrow(/binds no "lse" and "delta"/);
    expect(() =>
      packedStatsSpec(
        {
          storage: [
            { name: 'lse', type: 'f32', access: 'read' },
            { name: 'delta', type: 'f32', access: 'read' },
          ],
          workgroupSize: 8,
          body: 'let x = lse[index[0]];',
        },
        'lse',
        'delta',
      ),
    ).toThrow(/nested index/);
  });
});
