import { describe, expect, it } from 'vitest';
import { type UniformField, uniformLayout, writeUniforms } from './uniforms.js';

describe('writeUniforms', () => {
  const fields: UniformField[] = [
    { name: 'rows', type: 'u32' },
    { name: 'offset', type: 'i32' },
    { name: 'scale', type: 'f32' },
    { name: 'shape', type: 'vec4u' },
    { name: 'bias', type: 'vec4f' },
    { name: 'strides', type: 'array<vec4u,2>' },
    { name: 'tail', type: 'u32' },
  ];

  it('lays fields out at WGSL uniform alignment', () => {
    const layout = uniformLayout(fields);
    // u32, i32, f32 pack at 0/4/8; vec4s and arrays of vec4 align to 16.
    expect(layout.offsets).toEqual([0, 4, 8, 16, 32, 48, 80]);
    expect(layout.size).toBe(96);
  });

  it('writes scalars, vectors and arrays by their types at a base offset, zeros past a short list', () => {
    const base = 256;
    const view = new DataView(new ArrayBuffer(base + 96));
    for (let i = 0; i < view.byteLength; i += 4) view.setUint32(i, 0xdeadbeef, true);
    writeUniforms(view, base, fields, {
      rows: 4_294_967_295,
      offset: -7,
      scale: 0.1,
      shape: [3, 5],
      bias: new Float32Array([1.5, -2, 0.25, 8]),
      strides: [1, 2, 3, 4, 5, 6, 7],
      tail: -1,
    });
    expect(view.getUint32(base, true)).toBe(4_294_967_295);
    expect(view.getInt32(base + 4, true)).toBe(-7);
    expect(view.getFloat32(base + 8, true)).toBe(Math.fround(0.1));
    // Padding between fields is left as it was.
    expect(view.getUint32(base + 12, true)).toBe(0xdeadbeef);
    expect([0, 1, 2, 3].map((k) => view.getUint32(base + 16 + 4 * k, true))).toEqual([3, 5, 0, 0]);
    expect([0, 1, 2, 3].map((k) => view.getFloat32(base + 32 + 4 * k, true))).toEqual([1.5, -2, 0.25, 8]);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((k) => view.getUint32(base + 48 + 4 * k, true))).toEqual([
      1, 2, 3, 4, 5, 6, 7, 0,
    ]);
    // A negative number in a u32 field wraps as WGSL's u32 would.
    expect(view.getUint32(base + 80, true)).toBe(4_294_967_295);
    // Nothing before the base is touched.
    expect(view.getUint32(base - 4, true)).toBe(0xdeadbeef);
  });

  it('writes only the first lane of a vector given one number', () => {
    const view = new DataView(new ArrayBuffer(96));
    writeUniforms(view, 0, fields, {
      rows: 1,
      offset: 2,
      scale: 3,
      shape: 9,
      bias: 1,
      strides: [],
      tail: 0,
    });
    expect(view.getUint32(16, true)).toBe(9);
    expect(view.getUint32(20, true)).toBe(0);
  });

  it('names a missing value', () => {
    const view = new DataView(new ArrayBuffer(96));
    expect(() => writeUniforms(view, 0, fields, { rows: 1 })).toThrow('uniform offset has no value');
  });
});
