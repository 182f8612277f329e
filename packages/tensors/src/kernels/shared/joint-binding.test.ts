import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { jointBindingSpec, jointTensor, storageBuffersPerStage } from './joint-binding.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice({ limits: 'default' });
});
afterAll(() => device?.destroy());

const spec = {
  storage: [
    { name: 'x', type: 'f32' as const, access: 'read' as const },
    { name: 'q_norm', type: 'f32' as const, access: 'read' as const },
    { name: 'k_norm', type: 'f32' as const, access: 'read' as const },
    { name: 'out', type: 'f32' as const, access: 'read_write' as const },
  ],
  workgroupSize: 8,
  body: 'out[i] = q_norm[i] * k_norm[i + 1u] + my_q_norm[i];',
};

describe('joint bindings', () => {
  it('reads the second array at its offset in the joint one, in the first one binding place', () => {
    const joined = jointBindingSpec(spec, 'q_norm', 'k_norm', 'qk_norm', '80u');
    expect(joined.storage.map((binding) => binding.name)).toEqual(['x', 'qk_norm', 'out']);
    expect(joined.body).toBe('out[i] = qk_norm[i] * qk_norm[80u + (i + 1u)] + my_q_norm[i];');
  });

  it('refuses a kernel without both read-only bindings, and a nested index', () => {
    expect(() => jointBindingSpec(spec, 'q_norm', 'v_norm', 'joint', '8u')).toThrow(TensorError);
    expect(() => jointBindingSpec(spec, 'x', 'out', 'joint', '8u')).toThrow(/no read-only "x" and "out"/);
    expect(() =>
      jointBindingSpec({ ...spec, body: 'let a = k_norm[index[0]];' }, 'q_norm', 'k_norm', 'j', '8u'),
    ).toThrow(/nested index/);
  });

  it('jointTensor holds the first tensor values, then the second one (odd sizes)', async () => {
    expect(storageBuffersPerStage(device)).toBe(8);
    const first = Float32Array.from({ length: 13 }, (_, i) => i * 0.5 - 3);
    const second = Float32Array.from({ length: 7 }, (_, i) => 100 + i);
    const joint = jointTensor(
      device,
      device.fromArray(first, [13], 'f32'),
      device.fromArray(second, [7], 'f32'),
    );
    expect(joint.shape).toEqual([20]);
    expect([...(await joint.toArray())]).toEqual([...first, ...second]);
    expect(() =>
      jointTensor(device, device.fromArray([1], [1], 'i32'), device.fromArray([1], [1], 'f32')),
    ).toThrow(/must be f32/);
  });
});
