import { expectClose, Rng, requireF16 } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { UNARY_FUNCTIONS, type UnaryOp } from '../../autograd/backend.js';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { roundToF16 } from '../../tensor/dtype.js';
import { unaryBackwardReference } from './backward-reference.js';
import { unaryReference } from './reference.js';
import { unaryBackward } from './unary-backward.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

const RANGES: Partial<Record<UnaryOp, [number, number]>> = {
  log: [0.1, 4],
  sqrt: [0.1, 4],
  rsqrt: [0.1, 4],
  reciprocal: [0.2, 4],
};

/** x, out = op(x) (float64 reference, as the forward kernel would give) and grad. */
function inputs(op: UnaryOp, n: number, seed: number) {
  const rng = new Rng(seed);
  const [low, high] = RANGES[op] ?? [-6, 6];
  const x = rng.uniform(n, low, high);
  const out = Float32Array.from(unaryReference(op, x));
  const grad = rng.uniform(n, -1, 1);
  return { x, out, grad };
}

async function run(target: Device, op: UnaryOp, shape: number[], seed: number) {
  const n = shape.reduce((p, d) => p * d, 1);
  const { x, out, grad } = inputs(op, n, seed);
  const result = unaryBackward(
    op,
    target.fromArray(x, shape, 'f32'),
    target.fromArray(out, shape, 'f32'),
    target.fromArray(grad, shape, 'f32'),
  );
  expect(result.shape).toEqual(shape);
  return { actual: await result.toArray(), expected: unaryBackwardReference(op, x, out, grad) };
}

describe('unary-backward', () => {
  for (const op of Object.values(UNARY_FUNCTIONS)) {
    it(`${op}: grad * derivative at 1, 7, 1000 elements`, async () => {
      for (const [i, shape] of [[1], [7], [10, 100]].entries()) {
        const { actual, expected } = await run(device, op, shape, 10 + i);
        expectClose(actual, expected, { rtol: 2e-5, atol: 2e-6, label: `${op} ${shape}` });
      }
    });
  }

  it('handles tensors split in chunks and more than 65,535 workgroups', async () => {
    const small = await createDevice({
      maxBindingBytes: 4096,
      tuning: { elementwiseWorkgroup: 1, elementwisePerInvocation: 1 },
    });
    const chunked = await run(small, 'silu', [300, 7], 3);
    expectClose(chunked.actual, chunked.expected, { rtol: 2e-5, atol: 2e-6, label: 'chunked' });
    const wide = await createDevice({ tuning: { elementwiseWorkgroup: 1, elementwisePerInvocation: 1 } });
    const many = await run(wide, 'tanh', [66_000 * 4 + 3], 4);
    expectClose(many.actual, many.expected, { rtol: 2e-5, atol: 2e-6, label: '65,535+ workgroups' });
    const vectors = await run(wide, 'exp', [66_000 * 4], 5);
    expectClose(vectors.actual, vectors.expected, { rtol: 2e-5, atol: 2e-6, label: 'vec4 65,535+' });
    small.destroy();
    wide.destroy();
  });

  it('computes f16 in f32 and rounds the result', async (context) => {
    requireF16(context, device.hasF16);
    const { x, out, grad } = inputs('gelu', 1000, 6);
    const [xs, outs, grads] = [x, out, grad].map((v) => roundToF16(v));
    const result = unaryBackward(
      'gelu',
      device.fromArray(xs, [1000], 'f16'),
      device.fromArray(outs, [1000], 'f16'),
      device.fromArray(grads, [1000], 'f16'),
    );
    expect(result.dtype).toBe('f16');
    expectClose(await result.toArray(), roundToF16(unaryBackwardReference('gelu', xs, outs, grads)), {
      rtol: 2e-3,
      atol: 1e-3,
    });
  });

  it('rejects mismatched shapes and dtypes', () => {
    const a = device.fromArray([1, 2, 3], [3], 'f32');
    expect(() => unaryBackward('exp', a, a, device.fromArray([1, 2], [2], 'f32'))).toThrow(/shape/);
    expect(() => unaryBackward('sin', device.fromArray([1, 2, 3], [3], 'i32'), a, a)).toThrow(/f32 or f16/);
  });
});
