import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { type CrossEntropyOptions, crossEntropy } from './cross-entropy.js';
import { crossEntropyReference } from './reference.js';

let device: Device;
let smallBindings: Device;
beforeAll(async () => {
  device = await createDevice();
  // 4 KiB per binding: tensors above 1024 f32 values are split into chunks of whole rows.
  smallBindings = await createDevice({ maxBindingBytes: 4096 });
});

/** Targets in [0, vocab) with every `ignoreEvery`-th row set to the ignore index. */
function makeTargets(
  rng: Rng,
  rows: number,
  vocab: number,
  ignoreEvery: number,
  ignoreIndex = -100,
): Int32Array {
  const targets = rng.integers(rows, 0, vocab);
  for (let r = 0; r < rows; r += ignoreEvery) targets[r] = ignoreIndex;
  return targets;
}

async function check(
  logitsData: Float32Array,
  shape: number[],
  targetsData: Int32Array,
  options: CrossEntropyOptions,
  dtype: 'f32' | 'f16' = 'f32',
) {
  const vocab = shape[shape.length - 1];
  const expected = crossEntropyReference(logitsData, vocab, targetsData, options);
  const label = `${JSON.stringify(shape)} ${JSON.stringify(options)} ${dtype}`;
  await device.scope(async () => {
    const logits = device.fromArray(logitsData, shape, dtype);
    const targets = device.fromArray(targetsData, shape.slice(0, -1), 'i32');
    const result = crossEntropy(logits, targets, options);
    expect(result.loss.shape).toEqual(options.reduction === 'none' ? shape.slice(0, -1) : []);
    expectClose(await result.loss.toArray(), expected.loss, {
      rtol: 2e-5,
      atol: 2e-5,
      label: `loss ${label}`,
    });
    expectClose(await result.logSumExp.toArray(), expected.logSumExp, { rtol: 1e-5, label: `lse ${label}` });
    expect(await result.tokenCount.item()).toBe(expected.tokenCount);
  });
}

describe('crossEntropy', () => {
  for (const [rows, vocab] of [
    [1, 1],
    [7, 7],
    [33, 33],
    [5, 1000],
    [9, 32_000],
    [4, 151_936],
  ]) {
    it(`matches the reference on ${rows} rows of ${vocab} logits with ignored rows`, async () => {
      const rng = new Rng(rows * 7 + vocab);
      const logits = rng.normal(rows * vocab, 3).map((v, i) => v + (i % 5) * 20);
      const targets = makeTargets(rng, rows, vocab, 3);
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        await check(logits, [rows, vocab], targets, { reduction });
      }
      await check(logits, [rows, vocab], targets, { labelSmoothing: 0.1 });
      const custom = makeTargets(rng, rows, vocab, 2, 0);
      await check(logits, [rows, vocab], custom, { ignoreIndex: 0, reduction: 'sum', labelSmoothing: 0.25 });
    });
  }

  it('takes logits of any rank with matching targets', async () => {
    const rng = new Rng(2);
    const logits = rng.normal(2 * 3 * 33);
    await check(logits, [2, 3, 33], makeTargets(rng, 6, 33, 4), { reduction: 'none' });
    await check(logits, [2, 3, 33], makeTargets(rng, 6, 33, 4), {});
  });

  it('gives 0 (not NaN) when every row is ignored, and NaN for targets out of range', async () => {
    const rng = new Rng(3);
    const logits = rng.normal(4 * 40);
    await check(logits, [4, 40], Int32Array.from([-100, -100, -100, -100]), {});
    const bad = Int32Array.from([1, 40, -1, 2]);
    await check(logits, [4, 40], bad, { reduction: 'none' });
    await check(logits, [4, 40], bad, {});
    const result = crossEntropy(device.fromArray(logits, [4, 40], 'f32'), device.fromArray(bad, [4], 'i32'));
    expect(Number.isNaN(await result.loss.item())).toBe(true);
  });

  it('handles more than 65,535 rows (grid split)', async () => {
    const rng = new Rng(4);
    const rows = 70_001;
    const logits = rng.normal(rows * 7, 2);
    await check(logits, [rows, 7], makeTargets(rng, rows, 7, 5), {});
    await check(logits.subarray(0, rows * 4), [rows, 4], makeTargets(rng, rows, 4, 5), {
      labelSmoothing: 0.1,
    });
  });

  it('reads logits split in chunks of whole rows', async () => {
    const rng = new Rng(6);
    for (const [rows, vocab] of [
      [100, 33],
      [64, 64],
    ]) {
      const logitsData = rng.normal(rows * vocab, 3);
      const targetsData = makeTargets(rng, rows, vocab, 3);
      const logits = smallBindings.fromArray(logitsData, [rows, vocab], 'f32');
      expect(logits.chunked).toBe(true);
      const targets = smallBindings.fromArray(targetsData, [rows], 'i32');
      for (const options of [{}, { reduction: 'none' as const, labelSmoothing: 0.1 }]) {
        const result = crossEntropy(logits, targets, options);
        const expected = crossEntropyReference(logitsData, vocab, targetsData, options);
        expectClose(await result.loss.toArray(), expected.loss, { rtol: 2e-5, atol: 2e-5 });
        expectClose(await result.logSumExp.toArray(), expected.logSumExp, { rtol: 1e-5 });
        expect(await result.tokenCount.item()).toBe(expected.tokenCount);
      }
    }
  });

  it('reads f16 logits and computes in f32', async (context) => {
    requireF16(context, device.hasF16);
    const rng = new Rng(5);
    for (const [rows, vocab] of [
      [9, 32_000],
      [3, 151_936],
      [7, 33],
    ]) {
      const logits = roundToF16(rng.normal(rows * vocab, 3));
      const targets = makeTargets(rng, rows, vocab, 4);
      await check(logits, [rows, vocab], targets, { reduction: 'none' }, 'f16');
      await check(logits, [rows, vocab], targets, { labelSmoothing: 0.1 }, 'f16');
    }
  });

  it('rejects bad shapes, dtypes and options', () => {
    const logits = device.fromArray(new Float32Array(12), [3, 4], 'f32');
    const targets = device.fromArray([0, 1, 2], [3], 'i32');
    expect(() => crossEntropy(logits, device.fromArray([0, 1], [2], 'i32'))).toThrow(
      /crossEntropy: targets \[2\] must have the shape of logits \[3, 4\] without its last axis/,
    );
    expect(() => crossEntropy(logits, device.fromArray([0, 1, 2], [3], 'f32'))).toThrow(
      /targets .* must be i32/,
    );
    expect(() => crossEntropy(logits, targets, { labelSmoothing: 2 })).toThrow(/labelSmoothing 2 is not in/);
  });
});
