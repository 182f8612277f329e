import {
  autograd,
  clearTape,
  createDevice,
  type Device,
  isTracked,
  requiresGrad,
  type Tensor,
} from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeanMetric } from './metrics/mean-metric.js';
import {
  adaptersDisabledReference,
  frozenCopyReference,
  precomputedReference,
  precomputeReferenceLogProbs,
} from './reference-log-probs.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

interface Batch {
  device: Device;
  exampleIds: number[];
}

describe('reference log-probabilities', () => {
  it('adapters disabled: runs the forward inside the PEFT scope and records nothing', async () => {
    const weight = requiresGrad(device.fromArray([2], [1], 'f32'));
    let adaptersOn = true;
    const withAdaptersDisabled = <R>(fn: () => R): R => {
      adaptersOn = false;
      try {
        return fn();
      } finally {
        adaptersOn = true;
      }
    };
    const seen: boolean[] = [];
    const forward = (batch: Batch) => {
      seen.push(adaptersOn);
      const ids = device.fromArray(batch.exampleIds, [batch.exampleIds.length], 'f32');
      return { chosen: autograd.mul(ids, weight), rejected: autograd.neg(autograd.mul(ids, weight)) };
    };
    const reference = adaptersDisabledReference(withAdaptersDisabled, forward);
    const values = reference.logProbs({ device, exampleIds: [1, 3] });
    expect(reference.kind).toBe('adapters-disabled');
    expect(seen).toEqual([false]);
    expect(adaptersOn).toBe(true);
    expect(isTracked(values.chosen)).toBe(false);
    expect(Array.from(await values.chosen.toArray())).toEqual([2, 6]);
    const frozen = frozenCopyReference(forward).logProbs({ device, exampleIds: [1] });
    expect(isTracked(frozen.rejected)).toBe(false);
  });

  it('precomputed once, then looked up by pair id; a missing id is named', async () => {
    const forward = (batch: Batch) => ({
      chosen: device.fromArray(
        batch.exampleIds.map((id) => -id),
        [batch.exampleIds.length],
        'f32',
      ),
      rejected: device.fromArray(
        batch.exampleIds.map((id) => -2 * id),
        [batch.exampleIds.length],
        'f32',
      ),
    });
    const batches: Batch[] = [
      { device, exampleIds: [4, 1] },
      { device, exampleIds: [2] },
    ];
    const before = device.memory().liveTensors;
    const table = await precomputeReferenceLogProbs(batches, forward);
    expect(device.memory().liveTensors).toBe(before);
    expect([...table.entries()].sort((a, b) => a[0] - b[0])).toEqual([
      [1, { chosen: -1, rejected: -2 }],
      [2, { chosen: -2, rejected: -4 }],
      [4, { chosen: -4, rejected: -8 }],
    ]);
    const reference = precomputedReference<Batch>(table);
    const values = reference.logProbs({ device, exampleIds: [2, 4] });
    const read = async (t: Tensor) => Array.from(await t.toArray());
    expect(await read(values.chosen)).toEqual([-2, -4]);
    expect(await read(values.rejected)).toEqual([-4, -8]);
    expect(() => reference.logProbs({ device, exampleIds: [9] })).toThrow(/no reference values for pair 9/);
  });
});

describe('MeanMetric', () => {
  it('update / compute / reset', () => {
    const metric = new MeanMetric();
    expect(metric.compute()).toBeNull();
    metric.update(2, 3);
    metric.updateAll([4, 6]);
    expect(metric.compute()).toBe((6 + 4 + 6) / 5);
    metric.reset();
    expect(metric.compute()).toBeNull();
  });
});
