import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { rotaryReference } from './reference.js';
import { type RotaryStyle, rotary } from './rotary.js';
import { rotaryFrequencies, rotaryTables, rotaryTableValues } from './rotary-tables.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

describe('rotary', () => {
  const CASES: { shape: number[]; rotaryDim?: number }[] = [
    { shape: [1, 1, 1, 2] },
    { shape: [2, 7, 3, 8] },
    { shape: [1, 33, 4, 64] },
    { shape: [3, 5, 2, 48] },
    // Partial rotary (GPT-NeoX / Phi style): the tail of each head passes through.
    { shape: [2, 7, 3, 64], rotaryDim: 16 },
    { shape: [1, 9, 2, 10], rotaryDim: 4 },
    { shape: [2, 3, 1, 7], rotaryDim: 6 },
  ];
  for (const style of ['half', 'interleaved'] as RotaryStyle[]) {
    for (const { shape, rotaryDim } of CASES) {
      it(`${style} on ${JSON.stringify(shape)} rotaryDim ${rotaryDim ?? shape[3]}`, async () => {
        const rng = new Rng(shape.reduce((p, d) => p * 7 + d, style === 'half' ? 1 : 2));
        const data = rng.uniform(size(shape));
        const dim = rotaryDim ?? shape[3];
        const tables = rotaryTableValues({ seqLen: shape[1], dim, base: 10000 });
        await device.scope(async () => {
          const { cos, sin } = rotaryTables(device, { seqLen: shape[1], dim });
          const out = rotary(device.fromArray(data, shape, 'f32'), cos, sin, { style, rotaryDim });
          expect(out.shape).toEqual(shape);
          const expected = rotaryReference(data, shape, tables.cos, tables.sin, { style, rotaryDim });
          expectClose(await out.toArray(), expected, { rtol: 1e-5, atol: 1e-6 });
        });
      });
    }
  }

  it('matches hand-computed rotations for both conventions', async () => {
    // dim 4, base 10000: inv_freq = [1, 0.01]; position 1 gives angles 1 and 0.01.
    const x = [1, 2, 3, 4];
    const { cos, sin } = rotaryTables(device, { positions: [1], dim: 4 });
    const [c1, s1, c2, s2] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
    const half = await rotary(device.fromArray(x, [1, 1, 1, 4], 'f32'), cos, sin, {
      style: 'half',
    }).toArray();
    // rotate_half pairs (0, 2) and (1, 3).
    expectClose(half, [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2], { rtol: 1e-6 });
    const interleaved = await rotary(device.fromArray(x, [1, 1, 1, 4], 'f32'), cos, sin, {
      style: 'interleaved',
    }).toArray();
    // Meta pairs (0, 1) and (2, 3).
    expectClose(interleaved, [1 * c1 - 2 * s1, 2 * c1 + 1 * s1, 3 * c2 - 4 * s2, 4 * c2 + 3 * s2], {
      rtol: 1e-6,
    });
  });

  it('interleaved equals half on dimensions permuted to (evens, odds)', async () => {
    const shape = [2, 5, 3, 16];
    const data = new Rng(77).uniform(size(shape));
    const permuted = new Float32Array(data.length);
    for (let row = 0; row < data.length / 16; row++) {
      for (let i = 0; i < 8; i++) {
        permuted[row * 16 + i] = data[row * 16 + 2 * i];
        permuted[row * 16 + 8 + i] = data[row * 16 + 2 * i + 1];
      }
    }
    const { cos, sin } = rotaryTables(device, { seqLen: 5, dim: 16 });
    const a = await rotary(device.fromArray(data, shape, 'f32'), cos, sin, {
      style: 'interleaved',
    }).toArray();
    const b = await rotary(device.fromArray(permuted, shape, 'f32'), cos, sin, { style: 'half' }).toArray();
    for (let row = 0; row < data.length / 16; row++) {
      for (let i = 0; i < 8; i++) {
        expect(a[row * 16 + 2 * i]).toBeCloseTo(b[row * 16 + i], 6);
        expect(a[row * 16 + 2 * i + 1]).toBeCloseTo(b[row * 16 + 8 + i], 6);
      }
    }
  });

  it('takes per-batch-row tables for padded rows and a KV-cache offset', async () => {
    const shape = [3, 4, 2, 8];
    const positions = [
      [0, 1, 2, 3],
      [0, 0, 0, 1], // left padded: pads at position 0
      [10, 11, 12, 13], // decoding after 10 cached tokens
    ];
    const data = new Rng(12).uniform(size(shape));
    const tables = rotaryTableValues({ positions, dim: 8, base: 500 });
    expect(tables.shape).toEqual([3, 4, 4]);
    for (const style of ['half', 'interleaved'] as RotaryStyle[]) {
      await device.scope(async () => {
        const { cos, sin } = rotaryTables(device, { positions, dim: 8, base: 500 });
        expect(cos.shape).toEqual([3, 4, 4]);
        const out = rotary(device.fromArray(data, shape, 'f32'), cos, sin, { style });
        const expected = rotaryReference(data, shape, tables.cos, tables.sin, { style, batchedTables: true });
        expectClose(await out.toArray(), expected, { rtol: 1e-5, atol: 1e-6 });
      });
    }
  });

  it('rotates f16 inputs in f32 and rounds the result', async (context) => {
    requireF16(context, device.hasF16);
    const shape = [2, 9, 3, 32];
    const data = roundToF16(new Rng(3).uniform(size(shape)));
    const tables = rotaryTableValues({ seqLen: 9, dim: 32 });
    for (const dtype of ['f32', 'f16'] as const) {
      const { cos, sin } = rotaryTables(device, { seqLen: 9, dim: 32, dtype });
      const out = rotary(device.fromArray(data, shape, 'f16'), cos, sin, { style: 'half' });
      expect(out.dtype).toBe('f16');
      const expected = rotaryReference(data, shape, tables.cos, tables.sin, { style: 'half' });
      expectClose(await out.toArray(), expected, { rtol: 2e-3, atol: 2e-3 });
    }
  });

  it('spreads more than 65,535 workgroups over two grid dimensions', async () => {
    const wg = device.tuning.elementwiseWorkgroup;
    // headDim 2: one work item per (token, head); enough rows to need more than 65,535 workgroups.
    const heads = 64;
    const seq = Math.ceil((65_536 * wg) / heads) + 3;
    const shape = [1, seq, heads, 2];
    const data = new Float32Array(size(shape)).map((_, i) => (i % 251) / 251);
    const { cos, sin } = rotaryTables(device, { seqLen: seq, dim: 2, base: 10000 });
    const out = await rotary(device.fromArray(data, shape, 'f32'), cos, sin, { style: 'half' }).toArray();
    for (const s of [0, 1, seq >> 1, seq - 2, seq - 1]) {
      for (const h of [0, heads - 1]) {
        const at = (s * heads + h) * 2;
        const [c, sn] = [Math.cos(s), Math.sin(s)];
        expect(out[at]).toBeCloseTo(data[at] * c - data[at + 1] * sn, 4);
        expect(out[at + 1]).toBeCloseTo(data[at + 1] * c + data[at] * sn, 4);
      }
    }
  });

  it('rejects bad shapes and options', () => {
    const x = device.fromArray(new Float32Array(2 * 3 * 2 * 8), [2, 3, 2, 8], 'f32');
    const { cos, sin } = rotaryTables(device, { seqLen: 3, dim: 8 });
    expect(() => rotary(x.reshape([6, 2, 8]), cos, sin, { style: 'half' })).toThrow(/\[batch, seq, heads/);
    expect(() => rotary(x, cos, sin, { style: 'half', rotaryDim: 6 })).toThrow(/tables must be/);
    expect(() => rotary(x, cos, sin, { style: 'half', rotaryDim: 5 })).toThrow(/even/);
    expect(() => rotary(x, cos, sin, { style: 'half', rotaryDim: 10 })).toThrow(/no larger than headDim/);
    expect(() => rotary(x, cos, sin, { style: 'sideways' as RotaryStyle })).toThrow(/style/);
    const short = rotaryTables(device, { seqLen: 2, dim: 8 });
    expect(() => rotary(x, short.cos, short.sin, { style: 'half' })).toThrow(/rotary\(x f32\[2, 3, 2, 8\]/);
    expect(() => rotary(x, cos, short.sin, { style: 'half' })).toThrow(/shapes differ/);
    const ids = device.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4], 'i32');
    expect(() => rotary(x, ids, ids, { style: 'half' })).toThrow(/float dtype/);
    expect(() => rotaryTables(device, { seqLen: 3, dim: 7 })).toThrow(/even/);
    expect(() => rotaryTables(device, { positions: [[0, 1], [0]], dim: 8 })).toThrow(/same length/);
  });
});

describe('rotaryTables frequencies', () => {
  const close = (actual: ArrayLike<number>, expected: number[]) =>
    expectClose(actual, expected, { rtol: 1e-9, atol: 1e-12 });

  it('defaults to base^(-2i/dim)', () => {
    // dim 8, base 10000: 10000^0, 10000^-1/4, 10000^-1/2, 10000^-3/4.
    close(rotaryFrequencies({ dim: 8 }).inverseFrequencies, [1, 0.1, 0.01, 0.001]);
    close(rotaryFrequencies({ dim: 4, base: 100 }).inverseFrequencies, [1, 0.1]);
  });

  it('linear divides every frequency by the factor', () => {
    close(
      rotaryFrequencies({ dim: 4, scaling: { type: 'linear', factor: 2 } }).inverseFrequencies,
      [0.5, 0.005],
    );
    // Equivalently positions divided by the factor: position 6 at factor 2 is position 3 unscaled.
    const scaled = rotaryTableValues({ positions: [6], dim: 4, scaling: { type: 'linear', factor: 2 } });
    close(scaled.cos, [Math.cos(3), Math.cos(0.03)]);
  });

  it('dynamic NTK raises the base only past the trained context', () => {
    const scaling = { type: 'dynamic' as const, factor: 2, originalMaxPositionEmbeddings: 16 };
    // L = 32 > 16: base' = 10000 * (2 * 32 / 16 - 1)^(4 / 2) = 90000, inv = [1, 1/300].
    close(rotaryFrequencies({ dim: 4, scaling: { ...scaling, sequenceLength: 32 } }).inverseFrequencies, [
      1,
      1 / 300,
    ]);
    // From the positions: max position 31 gives L = 32.
    const table = rotaryTableValues({ positions: [0, 31], dim: 4, scaling });
    close(table.sin, [0, 0, Math.sin(31), Math.sin(31 / 300)]);
    // L <= 16: unchanged.
    close(
      rotaryFrequencies({ dim: 4, scaling: { ...scaling, sequenceLength: 10 } }).inverseFrequencies,
      [1, 0.01],
    );
  });

  it('llama3 keeps high, divides low and blends the middle frequencies', () => {
    // dim 8, base 10000: inv = [1, 0.1, 0.01, 0.001], wavelengths 2 pi / inv = 6.28, 62.8, 628, 6283.
    // L0 = 1000, lowFreqFactor 1, highFreqFactor 4: low_wavelen 1000, high_wavelen 250.
    // i = 0, 1: wavelength < 250, kept. i = 3: 6283 > 1000, 0.001 / 8 = 0.000125.
    // i = 2: smooth = (1000 / 628.32 - 1) / 3 = 0.1971831, 0.8028169 * 0.01 / 8 + 0.1971831 * 0.01 = 0.00297535.
    const { inverseFrequencies, attentionFactor } = rotaryFrequencies({
      dim: 8,
      scaling: {
        type: 'llama3',
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 1000,
      },
    });
    expectClose(inverseFrequencies, [1, 0.1, 0.00297535, 0.000125], { rtol: 1e-6 });
    expect(attentionFactor).toBe(1);
  });

  it('yarn ramps between interpolation and extrapolation and scales by the attention factor', () => {
    // dim 8, base 10000, L0 1000: correction_dim(32) = 8 ln(1000 / 64 pi) / (2 ln 10000) = 0.6967 -> 0,
    // correction_dim(1) = 8 ln(1000 / 2 pi) / (2 ln 10000) = 2.2018 -> 3. ramp = [0, 1/3, 2/3, 1],
    // extrapolation = [1, 2/3, 1/3, 0]: inv' = [1, 0.1 (1/12 + 2/3), 0.01 (1/6 + 1/3), 0.001 / 4]
    //                                         = [1, 0.075, 0.005, 0.00025].
    const yarn = { type: 'yarn' as const, factor: 4, originalMaxPositionEmbeddings: 1000 };
    const truncated = rotaryFrequencies({ dim: 8, scaling: yarn });
    expectClose(truncated.inverseFrequencies, [1, 0.075, 0.005, 0.00025], { rtol: 1e-9 });
    // attention factor 0.1 ln 4 + 1 = 1.1386294.
    expect(truncated.attentionFactor).toBeCloseTo(1.1386294, 6);
    // Without truncation: ramp_i = (i - 0.69667) / 1.50515 -> [0, 0.20154, 0.86593, 1].
    const exact = rotaryFrequencies({ dim: 8, scaling: { ...yarn, truncate: false } });
    expectClose(exact.inverseFrequencies, [1, 0.0848854, 0.00350565, 0.00025], { rtol: 1e-5 });
    // DeepSeek's mscale pair: (0.1 * 0.5 ln 4 + 1) / (0.1 * 1 ln 4 + 1) = 1.0693147 / 1.1386294.
    const deepseek = rotaryFrequencies({ dim: 8, scaling: { ...yarn, mscale: 0.5, mscaleAllDim: 1 } });
    expect(deepseek.attentionFactor).toBeCloseTo(1.0693147 / 1.1386294, 6);
    expect(rotaryFrequencies({ dim: 8, scaling: { ...yarn, attentionFactor: 0.5 } }).attentionFactor).toBe(
      0.5,
    );
    // The tables carry the factor: cos at position 0 is the factor itself.
    const tables = rotaryTableValues({ positions: [0, 2], dim: 8, scaling: yarn });
    close(
      Array.from(tables.cos.subarray(0, 4)),
      [1, 1, 1, 1].map((v) => v * 1.1386294361119891),
    );
    close([tables.sin[4]], [Math.sin(2) * 1.1386294361119891]);
  });

  it('longrope divides by the short factors within the original context, by the long ones past it', () => {
    // dim 4, base 10000: inv_freq = [1, 0.01]. factor 16 over L0 = 8: a = sqrt(1 + ln 16 / ln 8) = sqrt(7/3).
    const longrope = {
      type: 'longrope' as const,
      factor: 16,
      originalMaxPositionEmbeddings: 8,
      shortFactor: [1, 2],
      longFactor: [3, 4],
    };
    const a = Math.sqrt(7 / 3);
    const short = rotaryFrequencies({ dim: 4, scaling: longrope, sequenceLength: 8 });
    close(Array.from(short.inverseFrequencies), [1, 0.005]);
    expect(short.attentionFactor).toBeCloseTo(a, 12);
    const long = rotaryFrequencies({ dim: 4, scaling: longrope, sequenceLength: 9 });
    close(Array.from(long.inverseFrequencies), [1 / 3, 0.0025]);
    // The tables pick by max(position) + 1: position 8 means a length of 9.
    const tables = rotaryTableValues({ positions: [8], dim: 4, scaling: longrope });
    close(Array.from(tables.cos), [Math.cos(8 / 3) * a, Math.cos(8 * 0.0025) * a]);
    const within = rotaryTableValues({ positions: [7], dim: 4, scaling: longrope });
    close(Array.from(within.sin), [Math.sin(7) * a, Math.sin(7 * 0.005) * a]);
    expect(
      rotaryFrequencies({ dim: 4, scaling: { ...longrope, factor: 1 }, sequenceLength: 2 }).attentionFactor,
    ).toBe(1);
    expect(() => rotaryFrequencies({ dim: 4, scaling: { ...longrope, longFactor: [1] } })).toThrow(
      /longFactor must hold 2 positive numbers/,
    );
  });
});

describe('rotary inverse', () => {
  it('takes the vec4 kernel for half style, f32, whole heads and pairs in fours, forward and inverse, shared and per-row tables', async () => {
    for (const [shape, batched] of [
      [[3, 5, 2, 8], false],
      [[2, 9, 3, 24], true],
    ] as [number[], boolean][]) {
      const data = new Rng(shape[3]).uniform(size(shape));
      const dim = shape[3];
      const positions = Array.from({ length: shape[0] }, (_, b) =>
        Array.from({ length: shape[1] }, (_, s) => 3 * b + s),
      );
      const spec = batched ? { positions, dim, base: 500 } : { seqLen: shape[1], dim, base: 500 };
      const tables = rotaryTableValues(spec);
      for (const inverse of [false, true]) {
        await device.scope(async () => {
          const { cos, sin } = rotaryTables(device, spec);
          device.startProfile();
          const out = rotary(device.fromArray(data, shape, 'f32'), cos, sin, { style: 'half', inverse });
          const result = await out.toArray();
          const profile = await device.stopProfile();
          expect(profile.keys.map((key) => key.name)).toContain(
            `rotary:half:quads:f32${inverse ? ':inverse' : ''}`,
          );
          const sinValues = inverse ? tables.sin.map((v) => -v) : tables.sin;
          const expected = rotaryReference(data, shape, tables.cos, sinValues, {
            style: 'half',
            batchedTables: batched,
          });
          expectClose(result, expected, { rtol: 1e-5, atol: 1e-6, label: `${shape} inverse ${inverse}` });
        });
      }
    }
  });

  it('rotates by the opposite angle (the reference with -sin) and undoes the rotation', async () => {
    const shape = [2, 5, 3, 8];
    const data = new Rng(90).uniform(size(shape));
    const tables = rotaryTableValues({ seqLen: 5, dim: 6, base: 10000 });
    await device.scope(async () => {
      const { cos, sin } = rotaryTables(device, { seqLen: 5, dim: 6 });
      for (const style of ['half', 'interleaved'] as RotaryStyle[]) {
        const x = device.fromArray(data, shape, 'f32');
        const back = rotary(x, cos, sin, { style, rotaryDim: 6, inverse: true });
        const negated = tables.sin.map((v) => -v);
        const expected = rotaryReference(data, shape, tables.cos, negated, { style, rotaryDim: 6 });
        expectClose(await back.toArray(), expected, { rtol: 1e-5, atol: 1e-5, label: style });
        const roundTrip = rotary(rotary(x, cos, sin, { style, rotaryDim: 6 }), cos, sin, {
          style,
          rotaryDim: 6,
          inverse: true,
        });
        expectClose(await roundTrip.toArray(), data, {
          rtol: 1e-5,
          atol: 1e-5,
          label: `${style} round trip`,
        });
      }
    });
  });
});
