import { createDevice, type Device } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstNonFinite } from './non-finite.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe('firstNonFinite', () => {
  it('names the first tensor holding NaN or infinity, or null when all are finite', async () => {
    const fine = device.fromArray([1, 2, 3], [3], 'f32');
    const infinite = device.fromArray([1, Number.POSITIVE_INFINITY], [2], 'f32');
    const nan = device.fromArray([Number.NaN, 0, 0, 0], [2, 2], 'f32');
    expect(await firstNonFinite([['a', fine]])).toBeNull();
    expect(
      await firstNonFinite([
        ['a', fine],
        ['b.grad', nan],
        ['c.grad', infinite],
      ]),
    ).toBe('b.grad');
    expect(
      await firstNonFinite([
        ['a', fine],
        ['c.grad', infinite],
      ]),
    ).toBe('c.grad');
    expect(await firstNonFinite([])).toBeNull();
  });
});
