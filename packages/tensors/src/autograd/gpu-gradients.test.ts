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
