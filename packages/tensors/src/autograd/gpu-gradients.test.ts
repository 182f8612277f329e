import { expectClose, Rng } from '@webtune/test-utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../device/create-device.js';
import type { Device } from '../device/device.js';
import { isFloat } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { backward, clearTape, gradOf, type Rule, requiresGrad, zeroGrad } from './engine.js';
import { differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { materialize, OP_CASES, type OpCase, referenceArgs } from './op-cases.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';
import { RULES } from './rules.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterEach(() => clearTape());

const gpu = differentiable(GPU_BACKEND);
const reference = differentiable(REFERENCE_BACKEND);

/**
 * Runs one op forward and backward on the GPU (f32) and on the float64 reference with the same
 * fresh random inputs and the same random output gradient; outputs and every input gradient must
 * agree to f32 accuracy.
 */
async function expectGpuMatchesReference(opCase: OpCase, seed: number) {
  const rule: Rule = RULES[opCase.op];
  const hostArgs = referenceArgs(opCase, new Rng(seed));
  const gpuArgs = materialize(opCase.args, new Rng(seed), (data, spec) =>
    device.fromArray(data, spec.shape, spec.dtype),
  );
  const hostInputs = rule
    .inputs(hostArgs)
    .filter((x): x is ReferenceTensor => x instanceof ReferenceTensor && isFloat(x.dtype));
  const gpuInputs = rule.inputs(gpuArgs).filter((x): x is Tensor => x instanceof Tensor && isFloat(x.dtype));
  expect(gpuInputs.length).toBe(hostInputs.length);
  for (const x of [...hostInputs, ...gpuInputs]) requiresGrad(x);

  const outputOf = <T>(result: unknown) => (rule.output ? rule.output(result) : result) as T;
  const hostOut = outputOf<ReferenceTensor>(
    (reference[opCase.op] as (...a: unknown[]) => unknown)(...hostArgs),
  );
  const gpuOut = outputOf<Tensor>((gpu[opCase.op] as (...a: unknown[]) => unknown)(...gpuArgs));
  expect(gpuOut.shape).toEqual(hostOut.shape);
  const cotangent = new Rng(seed + 1).uniform(hostOut.data.length, -1, 1);
  backward(hostOut, ReferenceTensor.from(cotangent, hostOut.shape));
  backward(gpuOut, device.fromArray(cotangent, hostOut.shape, 'f32'));

  const tolerance = { rtol: 2e-4, atol: 2e-5 };
  expectClose(await gpuOut.toArray(), hostOut.data, { ...tolerance, label: `${opCase.label} output` });
  for (const [i, x] of gpuInputs.entries()) {
    const grad = gradOf(x);
    expect(grad, `${opCase.label}: input ${i} got no gradient`).not.toBeNull();
    expect(grad!.shape).toEqual(x.shape);
    expectClose(await grad!.toArray(), gradOf(hostInputs[i])!.data, {
      ...tolerance,
      label: `${opCase.label} grad ${i}`,
    });
  }
  zeroGrad([...hostInputs, ...gpuInputs]);
}

describe('GPU gradients against the float64 reference, on fresh random inputs', () => {
  OP_CASES.forEach((opCase, index) => {
    it(opCase.label, () => device.scope(() => expectGpuMatchesReference(opCase, 500 + index)));
  });
});

describe('gradient sums fused into matmul backward', () => {
  it("adds a layer input's earlier gradient in the epilogue of the next dx = g W (no separate add)", async () => {
    const rng = new Rng(700);
    const [batch, rows, inner, out1, out2] = [2, 6, 8, 12, 4];
    const xData = rng.uniform(batch * rows * inner, -1, 1);
    const w1Data = rng.uniform(out1 * inner, -1, 1);
    const w2Data = rng.uniform(out2 * inner, -1, 1);
    const c1 = rng.uniform(batch * rows * out1, -1, 1);
    const c2 = rng.uniform(batch * rows * out2, -1, 1);
    const c3 = rng.uniform(batch * rows * inner, -1, 1);
    await device.scope(async () => {
      const x = requiresGrad(device.fromArray(xData, [batch, rows, inner], 'f32'));
      const w1 = device.fromArray(w1Data, [out1, inner], 'f32');
      const w2 = device.fromArray(w2Data, [out2, inner], 'f32');
      // h = 2x (an op's output: leaves sum their gradients apart) feeds a square and two
      // projections (the second scaled, as LoRA's products are).
      const h = gpu.scale(x, 2);
      const squared = gpu.square(h);
      const first = gpu.matmul(h, w1, { transposeB: true });
      const second = gpu.matmul(h, w2, { transposeB: true, alpha: 0.5 });
      const cotangents = [
        device.fromArray(c1, [batch, rows, out1], 'f32'),
        device.fromArray(c2, [batch, rows, out2], 'f32'),
        device.fromArray(c3, [batch, rows, inner], 'f32'),
      ];
      device.startProfile();
      backward([first, second, squared], cotangents);
      const profile = await device.stopProfile();
      // Backward runs second, first, then the square: the first projection's dx takes the second's
      // in its epilogue; only the square's gradient is added by a separate kernel.
      const adds = profile.keys.filter((k) => k.name.startsWith('binary:') && k.name.includes(':add:'));
      expect(adds.reduce((total, k) => total + k.dispatches, 0)).toBe(1);
      // dx = 2 dh, dh = c1 W1 + 0.5 c2 W2 + 2 h c3, in float64.
      const expected = new Float64Array(xData.length);
      for (let r = 0; r < batch * rows; r++) {
        for (let k = 0; k < inner; k++) {
          let sum = 4 * xData[r * inner + k] * c3[r * inner + k];
          for (let n = 0; n < out1; n++) sum += c1[r * out1 + n] * w1Data[n * inner + k];
          for (let n = 0; n < out2; n++) sum += 0.5 * c2[r * out2 + n] * w2Data[n * inner + k];
          expected[r * inner + k] = 2 * sum;
        }
      }
      expectClose(await gradOf(x)!.toArray(), expected, { rtol: 1e-5, atol: 1e-5 });
      zeroGrad([x]);
    });
  });
});
