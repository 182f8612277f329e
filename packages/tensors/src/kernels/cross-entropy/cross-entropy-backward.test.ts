import { Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { type CrossEntropyBackwardOptions, crossEntropyBackwardReference } from './backward-reference.js';
import { crossEntropyBackward } from './cross-entropy-backward.js';
import { crossEntropyReference } from './reference.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

async function check(
  target: Device,
  rows: number,
  vocab: number,
  options: CrossEntropyBackwardOptions,
  seed: number,
  extra: { allIgnored?: boolean; dtype?: 'f32' | 'f16' } = {},
) {
  const rng = new Rng(seed);
  const dtype = extra.dtype ?? 'f32';
  let logits = rng.uniform(rows * vocab, -4, 4);
  if (dtype === 'f16') logits = roundToF16(logits);
  const ignoreIndex = options.ignoreIndex ?? -100;
  const targets = rng.integers(rows, 0, vocab);
  for (let r = 0; r < rows; r += 3) if (extra.allIgnored || r % 2 === 0) targets[r] = ignoreIndex;
  if (extra.allIgnored) targets.fill(ignoreIndex);
  const forward = crossEntropyReference(logits, vocab, targets, options);
  const grad = options.reduction === 'none' ? rng.uniform(rows, -1, 1) : Float32Array.of(0.75);
  const result = crossEntropyBackward(
    target.fromArray(logits, [rows, vocab], dtype),
    target.fromArray(targets, [rows], 'i32'),
    target.fromArray(forward.logSumExp, [rows], 'f32'),
    target.fromArray([forward.tokenCount], [], 'f32'),
    target
      .fromArray(grad, [grad.length === 1 ? 1 : rows], 'f32')
      .reshape(options.reduction === 'none' ? [rows] : []),
    options,
  );
  const lse = Float32Array.from(forward.logSumExp);
  const expected = crossEntropyBackwardReference(logits, vocab, targets, lse, grad, options);
  const tolerance = dtype === 'f16' ? { rtol: 3e-3, atol: 1e-4 } : { rtol: 2e-5, atol: 1e-7 };
  await expectKernel(
    `${rows}x${vocab} ${JSON.stringify(options)}`,
    { dlogits: { actual: result, expected, shape: [rows, vocab] } },
    tolerance,
  );
}

describe('cross-entropy-backward', () => {
  it('mean, sum and none at rows 1, 7, 33 and vocab 7, 32, 1000', async () => {
    await check(device, 1, 7, {}, 1);
    await check(device, 7, 32, { reduction: 'sum' }, 2);
    await check(device, 33, 1000, { reduction: 'none' }, 3);
    await check(device, 9, 13, { ignoreIndex: 0 }, 4);
  });

  it('applies label smoothing', async () => {
    await check(device, 6, 12, { labelSmoothing: 0.1 }, 5);
    await check(device, 5, 9, { labelSmoothing: 0.2, reduction: 'none' }, 6);
  });

  it('gives zeros when every row is ignored', async () => {
    await check(device, 4, 8, {}, 7, { allIgnored: true });
  });

  it('handles logits split in chunks and more than 65,535 workgroups', async () => {
    const small = await createDevice({ maxBindingBytes: 1024 });
    await check(small, 20, 36, {}, 8);
    await check(small, 11, 37, { reduction: 'none' }, 9);
    const wide = await createDevice({ tuning: { elementwiseWorkgroup: 1 } });
    await check(wide, 66_000, 5, {}, 10);
    small.destroy();
    wide.destroy();
  });

  it('computes f16 logits in f32', async (context) => {
    requireF16(context, device.hasF16);
    await check(device, 8, 40, {}, 11, { dtype: 'f16' });
  });

  it('rejects targets of the wrong shape or dtype and a grad of the wrong size', () => {
    const logits = device.fromArray(new Float32Array(12), [3, 4], 'f32');
    const lse = device.fromArray([0, 0, 0], [3], 'f32');
    const count = device.fromArray([3], [], 'f32');
    const grad = device.fromArray([1], [], 'f32');
    expect(() =>
      crossEntropyBackward(logits, device.fromArray([1, 2], [2], 'i32'), lse, count, grad),
    ).toThrow(/targets/);
    expect(() =>
      crossEntropyBackward(logits, device.fromArray([1, 2, 3], [3], 'f32'), lse, count, grad),
    ).toThrow(/i32/);
    const targets = device.fromArray([1, 2, 3], [3], 'i32');
    expect(() => crossEntropyBackward(logits, targets, lse, count, grad, { reduction: 'none' })).toThrow(
      /grad/,
    );
  });
});
