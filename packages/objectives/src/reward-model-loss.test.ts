import { backward, clearTape, createDevice, type Device, gradOf, requiresGrad } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RewardMetrics } from './metrics/reward-metrics.js';
import { createValueHead, lastTokenPositions, pairwiseRewardLoss } from './reward-model-loss.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

describe('pairwise reward-model loss', () => {
  it('-log sigmoid(c - r): ln 2 for equal scores, gradient -sigmoid(r - c) / pairs', async () => {
    await device.scope(async () => {
      const chosen = requiresGrad(device.fromArray([1, 2, -0.5], [3], 'f32'));
      const rejected = requiresGrad(device.fromArray([1, -1, 0.5], [3], 'f32'));
      const { loss, margins } = pairwiseRewardLoss(chosen, rejected);
      backward(loss);
      const d = [0, 3, -1];
      const expected = d.map((x) => Math.log1p(Math.exp(-x)));
      expectClose(await loss.toArray(), [expected.reduce((a, b) => a + b) / 3], { rtol: 1e-6 });
      expectClose(await margins.toArray(), d, { rtol: 1e-6 });
      expectClose(
        await gradOf(chosen)!.toArray(),
        d.map((x) => -1 / (1 + Math.exp(x)) / 3),
        { rtol: 1e-5 },
      );
      const metrics = new RewardMetrics();
      metrics.update(await margins.toArray());
      expect(metrics.compute('eval_')).toEqual({ eval_accuracy: 1 / 3, eval_margin: 2 / 3 });
      metrics.reset();
      expect(metrics.compute()).toEqual({});
    });
  });

  it('last-token positions and value-head initialisation', async () => {
    expect(Array.from(lastTokenPositions([3, 1], 4))).toEqual([2, 4]);
    expect(() => lastTokenPositions([0], 4)).toThrow(/row 0 has length 0/);
    const head = createValueHead(device, 16, 3);
    const weights = Array.from(await head.weight.toArray());
    expect(head.weight.shape).toEqual([1, 16]);
    expect(Math.max(...weights.map(Math.abs))).toBeLessThanOrEqual(0.25);
    expect(new Set(weights).size).toBe(16);
    const again = Array.from(await createValueHead(device, 16, 3).weight.toArray());
    expect(again).toEqual(weights);
  });
});
