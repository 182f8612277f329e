import { Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import {
  type DecodeLayerShape,
  decodeLayer,
  decodeLayerLayout,
  decodeLayerUnsupported,
} from './decode-layer.js';
import { decodeLayerReference, normMatvecReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

/** A random layer of `shape`, its packed buffer, random caches, and a step's input. */
function randomCase(shape: DecodeLayerShape, rows: number, capacity: number, seed: number) {
  const rng = new Rng(seed);
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: D } = shape;
  const width = (heads + 2 * kvHeads) * D;
  const parts = {
    inputNorm: rng.uniform(H, 0.5, 1.5),
    qkv: rng.uniform(width * H, -0.3, 0.3),
    qkvBias: shape.bias ? rng.uniform(width, -0.5, 0.5) : null,
    qNorm: shape.qkNorm ? rng.uniform(D, 0.5, 1.5) : null,
    kNorm: shape.qkNorm ? rng.uniform(D, 0.5, 1.5) : null,
    o: rng.uniform(H * heads * D, -0.3, 0.3),
    postNorm: rng.uniform(H, 0.5, 1.5),
    gate: rng.uniform(I * H, -0.3, 0.3),
    up: rng.uniform(I * H, -0.3, 0.3),
    down: rng.uniform(H * I, -0.3, 0.3),
  };
  const layout = decodeLayerLayout(shape);
  const packed = new Float32Array(layout.length);
  for (const [name, values] of Object.entries(parts)) {
    const offset = layout[name as keyof typeof parts];
    if (values && offset !== null) packed.set(values, offset);
  }
  const positions = capacity;
  const angles = Array.from(
    { length: positions * (D / 2) },
    (_, i) => Math.floor(i / (D / 2)) * 0.1 * ((i % (D / 2)) + 1),
  );
  return {
    parts,
    packed,
    x: rng.uniform(rows * H, -1.5, 1.5),
    cos: Float32Array.from(angles, Math.cos),
    sin: Float32Array.from(angles, Math.sin),
    keys: rng.uniform(rows * capacity * kvHeads * D, -1, 1),
    values: rng.uniform(rows * capacity * kvHeads * D, -1, 1),
    ids: rng.integers(rows, 0, 11),
    table: rng.uniform(11 * H, -1.5, 1.5),
  };
}

describe('decodeLayer', () => {
  const cases: {
    name: string;
    shape: DecodeLayerShape;
    rows: number;
    padding: number[];
    slot: number;
    lanes?: number;
    embed?: boolean;
    window?: number;
    /** The last layer: the final norm and the head (vocab 11), with the argmax or without. */
    head?: 'argmax' | 'logits';
  }[] = [
    {
      name: 'stories260K-like (GQA 8/4, head 8), 3 ragged rows, the embedding first',
      shape: { hidden: 64, intermediate: 172, heads: 8, kvHeads: 4, headDim: 8, bias: false, qkNorm: false },
      rows: 3,
      padding: [0, 5, 2],
      slot: 13,
      embed: true,
      head: 'argmax',
    },
    {
      name: 'q/k/v bias and q/k norm, head 12, one row at slot 0',
      shape: { hidden: 36, intermediate: 20, heads: 3, kvHeads: 1, headDim: 12, bias: true, qkNorm: true },
      rows: 1,
      padding: [0],
      slot: 0,
    },
    {
      name: 'GPU lanes (64: 16 lanes per head split the keys), 2 rows',
      shape: { hidden: 32, intermediate: 44, heads: 4, kvHeads: 2, headDim: 8, bias: true, qkNorm: false },
      rows: 2,
      padding: [3, 0],
      slot: 21,
      lanes: 64,
    },
    {
      name: 'a sliding window of 6 (Mistral), 2 rows, one padded past the window start',
      shape: { hidden: 32, intermediate: 44, heads: 4, kvHeads: 2, headDim: 8, bias: false, qkNorm: false },
      rows: 2,
      padding: [0, 18],
      slot: 21,
      window: 6,
      head: 'logits',
    },
  ];
  for (const c of cases) {
    it(`${c.name} matches the float64 reference (residual stream, both caches, logits and argmax where asked)`, async () => {
      const capacity = 24;
      const { shape, rows, slot } = c;
      const data = randomCase(shape, rows, capacity, c.rows * 7 + slot);
      const { hidden: H, kvHeads, headDim: D } = shape;
      // The embedding's rows are the step's input.
      const x = c.embed
        ? Float32Array.from(
            { length: rows * H },
            (_, i) => data.table[data.ids[Math.floor(i / H)] * H + (i % H)],
          )
        : data.x;
      const hidden = device.fromArray(c.embed ? new Float32Array(rows * H) : x, [rows, H], 'f32');
      const keys = device.fromArray(data.keys, [rows, capacity, kvHeads, D], 'f32');
      const values = device.fromArray(data.values, [rows, capacity, kvHeads, D], 'f32');
      const scale = 1 / Math.sqrt(D);
      const vocab = 11;
      const rng = new Rng(slot);
      const finalNorm = rng.uniform(H, 0.5, 1.5);
      const headWeight = rng.uniform(vocab * H, -1, 1);
      const logits = device.empty([rows, vocab], 'f32');
      const ids = device.fromArray(c.embed ? data.ids : new Int32Array(rows), [rows], 'i32');
      const tokens = device.fromArray(new Int32Array(3 * rows).fill(-7), [3 * rows], 'i32');
      decodeLayer(device, {
        shape,
        weights: device.fromArray(data.packed, [data.packed.length], 'f32'),
        hidden,
        embed: c.embed
          ? {
              table: device.fromArray(data.table, [11, H], 'f32'),
              ids,
            }
          : null,
        cos: device.fromArray(data.cos, [capacity, D / 2], 'f32'),
        sin: device.fromArray(data.sin, [capacity, D / 2], 'f32'),
        padding: device.fromArray(c.padding, [rows], 'u32'),
        keys,
        values,
        slot,
        scale,
        eps: 1e-5,
        lanes: c.lanes,
        window: c.window,
        head: c.head
          ? {
              norm: device.fromArray(finalNorm, [H], 'f32'),
              eps: 1e-6,
              weight: device.fromArray(headWeight, [vocab, H], 'f32'),
              logits,
              argmax: c.head === 'argmax' ? { ids, tokens, at: 2 } : null,
            }
          : null,
      });
      const expected = decodeLayerReference({
        rows,
        ...shape,
        capacity,
        slot,
        padding: c.padding,
        scale,
        eps: 1e-5,
        window: c.window,
        x,
        inputNorm: data.parts.inputNorm,
        qkv: data.parts.qkv,
        qkvBias: data.parts.qkvBias,
        qkNorm: data.parts.qNorm && data.parts.kNorm ? { q: data.parts.qNorm, k: data.parts.kNorm } : null,
        o: data.parts.o,
        postNorm: data.parts.postNorm,
        gate: data.parts.gate,
        up: data.parts.up,
        down: data.parts.down,
        cos: data.cos,
        sin: data.sin,
        keys: data.keys,
        values: data.values,
      });
      const expectedLogits = normMatvecReference(
        expected.hidden,
        rows,
        H,
        { weight: finalNorm, eps: 1e-6 },
        headWeight,
        vocab,
      );
      if (c.head === 'argmax') {
        const chosen = Array.from({ length: rows }, (_, r) => {
          const row = Array.from(expectedLogits.subarray(r * vocab, (r + 1) * vocab));
          return row.indexOf(Math.max(...row));
        });
        expect(Array.from(await ids.toArray())).toEqual(chosen);
        expect(Array.from(await tokens.toArray())).toEqual([...new Array(2 * rows).fill(-7), ...chosen]);
      }
      await expectKernel(
        c.name,
        {
          ...(c.head ? { logits: { actual: logits, expected: expectedLogits } } : {}),
          hidden: { actual: hidden, expected: expected.hidden },
          keys: { actual: keys, expected: expected.keys },
          values: { actual: values, expected: expected.values },
        },
        { rtol: 1e-4, atol: 1e-4 },
      );
    });
  }

  it('names why a layer is too large or odd-sized for one workgroup', async () => {
    const base = { bias: false, qkNorm: false };
    expect(
      decodeLayerUnsupported(device, {
        ...base,
        hidden: 288,
        intermediate: 768,
        heads: 6,
        kvHeads: 6,
        headDim: 48,
      }),
    ).toMatch(/weights per layer/);
    // The limit is the tuning's (decodeLayerMaxWeights): a device allowing 2^21 takes that layer.
    const wide = await createDevice({ tuning: { decodeLayerMaxWeights: 1 << 21 } });
    const stories15M = { ...base, hidden: 288, intermediate: 768, heads: 6, kvHeads: 6, headDim: 48 };
    expect(decodeLayerUnsupported(wide, stories15M)).toBeNull();
    wide.destroy();
    expect(
      decodeLayerUnsupported(device, {
        ...base,
        hidden: 30,
        intermediate: 20,
        heads: 3,
        kvHeads: 3,
        headDim: 10,
      }),
    ).toMatch(/multiple of 4/);
    expect(
      decodeLayerUnsupported(device, {
        ...base,
        hidden: 64,
        intermediate: 172,
        heads: 8,
        kvHeads: 4,
        headDim: 8,
      }),
    ).toBeNull();
  });
});
