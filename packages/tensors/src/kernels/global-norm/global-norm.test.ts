import { expectClose, f16Usable, Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { clipByGlobalNorm, globalNorm } from './global-norm.js';
import { clipByGlobalNormReference, globalNormReference } from './reference.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

const SHAPES = [[1], [7], [33], [1000], [33, 33], [4, 1001], [3], [12], [5, 7], [64], [2, 2], [100_003]];

describe('globalNorm', () => {
  it('matches the float64 norm over many tensors of odd sizes in few dispatches', async () => {
    const rng = new Rng(1);
    const arrays = SHAPES.map((shape) =>
      rng.normal(
        shape.reduce((p, d) => p * d, 1),
        2,
      ),
    );
    const tensors = arrays.map((data, i) => device.fromArray(data, SHAPES[i], 'f32'));
    const before = device.stats.dispatches;
    const norm = globalNorm(tensors);
    // Two storage types (vec4 and scalar) over 12 tensors: at most 2 + 1 dispatches per 8 pieces.
    expect(device.stats.dispatches - before).toBeLessThanOrEqual(4);
    expect(norm.shape).toEqual([]);
    expectClose([await norm.item()], [globalNormReference(arrays)], { rtol: 1e-6 });
    expectClose([await globalNorm([tensors[0]]).item()], [Math.abs(arrays[0][0])], { rtol: 1e-7 });
    for (const t of tensors) t.dispose();
  });

  it('reads chunked and f16 tensors', async () => {
    const rng = new Rng(2);
    const shapes = [[100, 33], [64, 64], [7], [300, 5]];
    const arrays = shapes.map((shape) =>
      rng.uniform(
        shape.reduce((p, d) => p * d, 1),
        -1,
        1,
      ),
    );
    const tensors = arrays.map((data, i) => smallBindings.fromArray(data, shapes[i], 'f32'));
    expect(tensors[0].chunked && tensors[1].chunked).toBe(true);
    expectClose([await globalNorm(tensors).item()], [globalNormReference(arrays)], { rtol: 1e-6 });
    if (f16Usable(device.hasF16)) {
      const halves = arrays.map((data) => roundToF16(data));
      const mixed = [
        ...halves.map((data, i) => device.fromArray(data, shapes[i], 'f16')),
        device.fromArray(arrays[0], shapes[0], 'f32'),
      ];
      expectClose([await globalNorm(mixed).item()], [globalNormReference([...halves, arrays[0]])], {
        rtol: 1e-6,
      });
    }
  });

  it('spreads more than 65,535 workgroups over the grid', async () => {
    // Two invocations per workgroup keep the tensor small: 64 elements per workgroup.
    const narrow = await createDevice({ tuning: { rowWorkgroup: 2 } });
    const n = 65_536 * 64 + 3;
    const data = new Float32Array(n).fill(0.5);
    data[n - 1] = 1000;
    const expected = Math.sqrt((n - 1) * 0.25 + 1000 * 1000);
    const before = narrow.stats.dispatches;
    const norm = globalNorm([narrow.fromArray(data, [n], 'f32')]);
    expect(narrow.stats.dispatches - before).toBe(2);
    expectClose([await norm.item()], [expected], { rtol: 1e-6 });
    narrow.destroy();
  });

  it('clips in place on the GPU without reading the norm back', async () => {
    const rng = new Rng(3);
    const shapes = [[100, 33], [64, 64], [7]];
    const arrays = shapes.map((shape) => rng.normal(shape.reduce((p, d) => p * d, 1)));
    for (const [target, maxNorm] of [
      [smallBindings, 1.5],
      [device, 1e6],
    ] as const) {
      const tensors = arrays.map((data, i) => target.fromArray(data, shapes[i], 'f32'));
      const readbacks = target.stats.readbacks;
      const norm = clipByGlobalNorm([...tensors, tensors[2]], maxNorm);
      expect(target.stats.readbacks).toBe(readbacks);
      const expected = clipByGlobalNormReference([...arrays, arrays[2]], maxNorm);
      expectClose([await norm.item()], [expected.norm], { rtol: 1e-6 });
      for (let i = 0; i < tensors.length; i++) {
        expectClose(await tensors[i].toArray(), expected.clipped[i], {
          rtol: 2e-6,
          atol: 1e-7,
          label: `tensor ${i}`,
        });
      }
      expect(globalNormReference(await Promise.all(tensors.map((t) => t.toArray())))).toBeLessThanOrEqual(
        Math.max(maxNorm, expected.norm) * (1 + 1e-6),
      );
    }
  });

  it('rejects empty lists and integer tensors', () => {
    expect(() => globalNorm([])).toThrow(/globalNorm: needs at least one tensor/);
    expect(() => globalNorm([device.fromArray([1], [1], 'i32')])).toThrow(
      /globalNorm: input .* must be f32 or f16/,
    );
    expect(() => clipByGlobalNorm([device.fromArray([1], [1], 'f32')], -1)).toThrow(/maxNorm -1/);
  });
});
