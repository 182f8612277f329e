import { expectClose, Rng } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { isFloat } from '../tensor/dtype.js';
import { backward, gradOf, noGrad, requiresGrad, tapeSize } from './engine.js';
import { differentiable } from './functions.js';
import { OP_CASES, type OpCase, referenceArgs } from './op-cases.js';
import { REFERENCE_BACKEND, ReferenceTensor } from './reference-backend.js';
import { RULES } from './rules.js';

const reference = differentiable(REFERENCE_BACKEND);

/** The differentiable float inputs of a call (what finite differences perturb). */
function floatInputs(opCase: OpCase, args: unknown[]): ReferenceTensor[] {
  return RULES[opCase.op]
    .inputs(args)
    .filter((x): x is ReferenceTensor => x instanceof ReferenceTensor && isFloat(x.dtype));
}

function outputOf(opCase: OpCase, result: unknown): ReferenceTensor {
  const rule = RULES[opCase.op] as { output?: (r: unknown) => unknown };
  return (rule.output ? rule.output(result) : result) as ReferenceTensor;
}

/**
 * Checks the rule of one op against central finite differences in float64: with a random
 * cotangent c, the gradient of <op(inputs), c> from backward() must match
 * (f(x + h e_i) - f(x - h e_i)) / 2h for every element i of every differentiable input.
 */
function expectFiniteDifferences(opCase: OpCase, seed: number): void {
  const args = referenceArgs(opCase, new Rng(seed));
  const inputs = floatInputs(opCase, args);
  expect(inputs.length).toBeGreaterThan(0);
  const call = () => outputOf(opCase, (reference[opCase.op] as (...a: unknown[]) => unknown)(...args));
  const cotangentOf = (shape: readonly number[]) =>
    ReferenceTensor.from(
      new Rng(seed + 1).uniform(
        shape.reduce((p, d) => p * d, 1),
        -1,
        1,
      ),
      shape,
    );

  for (const input of inputs) requiresGrad(input);
  const output = call();
  const cotangent = cotangentOf(output.shape);
  backward(output, cotangent);
  expect(tapeSize()).toBe(0);

  const objective = () => noGrad(() => call().data.reduce((p, v, i) => p + v * cotangent.data[i], 0));
  const h = 1e-6;
  inputs.forEach((input, which) => {
    const analytic = gradOf(input);
    expect(analytic, `${opCase.label}: input ${which} has no gradient`).not.toBeNull();
    const numeric = new Float64Array(input.data.length);
    for (let i = 0; i < input.data.length; i++) {
      const saved = input.data[i];
      input.data[i] = saved + h;
      const plus = objective();
      input.data[i] = saved - h;
      const minus = objective();
      input.data[i] = saved;
      numeric[i] = (plus - minus) / (2 * h);
    }
    expectClose(analytic!.data, numeric, { rtol: 1e-5, atol: 1e-7, label: `${opCase.label} input ${which}` });
    requiresGrad(input, false);
  });
}

describe('gradient rules against central finite differences (float64 reference)', () => {
  OP_CASES.forEach((opCase, index) => {
    it(opCase.label, () => expectFiniteDifferences(opCase, 100 + index));
  });

  it('covers every op of the rule table', () => {
    const tested = new Set(OP_CASES.map((x) => x.op));
    const untested = Object.keys(RULES).filter((op) => !tested.has(op as never));
    expect(untested).toEqual([]);
  });
});
