import {
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  zeroGrad,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { add, linear, linearResidual } from './functional.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => clearTape());
afterAll(() => device?.destroy());

describe('linearResidual under autograd', () => {
  it('adds the residual in the matmul and gives the gradients of residual + linear', async () => {
    const rng = new Rng(3);
    const data = {
      x: rng.uniform(2 * 5 * 8, -1, 1),
      w: rng.uniform(12 * 8, -1, 1),
      b: rng.uniform(12, -1, 1),
      r: rng.uniform(2 * 5 * 12, -1, 1),
      g: rng.uniform(2 * 5 * 12, -1, 1),
    };
    const run = async (fused: boolean) =>
      device.scope(async () => {
        const x = requiresGrad(device.fromArray(data.x, [2, 5, 8], 'f32'));
        const w = requiresGrad(device.fromArray(data.w, [12, 8], 'f32'));
        const b = requiresGrad(device.fromArray(data.b, [12], 'f32'));
        const r = requiresGrad(device.fromArray(data.r, [2, 5, 12], 'f32'));
        const before = device.stats.dispatches;
        const out = fused ? linearResidual(x, w, b, r) : add(r, linear(x, w, b));
        const forward = device.stats.dispatches - before;
        backward(out, device.fromArray(data.g, [2, 5, 12], 'f32'));
        const values = [await out.toArray()];
        for (const leaf of [x, w, b, r]) values.push(await gradOf(leaf)!.toArray());
        zeroGrad([x, w, b, r]);
        return { forward, values };
      });
    const fused = await run(true);
    const composed = await run(false);
    expect(fused.forward).toBe(1);
    expect(composed.forward).toBe(2);
    fused.values.forEach((value, i) => {
      expectClose(value, composed.values[i], {
        rtol: 1e-5,
        atol: 1e-6,
        label: ['out', 'dx', 'dw', 'db', 'dr'][i],
      });
    });
  });
});
