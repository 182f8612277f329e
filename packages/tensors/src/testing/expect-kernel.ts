import { type CloseOptions, expectClose } from '@webtune/test-utils';
import { formatShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

/*
 * Test support (not shipped: nothing outside tests imports src/testing/). The one way kernel tests
 * compare a kernel's outputs with their CPU reference.
 */

/** One output of a kernel and what its reference says it must be. */
export interface KernelExpectation {
  actual: Tensor;
  expected: ArrayLike<number>;
  /** The output's shape; checked before the values when given. */
  shape?: readonly number[];
  /** Compare exactly (integer outputs: argmax, ids). */
  exact?: boolean;
  /** Overrides the call's tolerance for this output. */
  tolerance?: CloseOptions;
}

/**
 * Reads every output back and checks it against its reference: the shape, then the values within
 * `tolerance` (|actual - expected| <= atol + rtol |expected|), or exactly. Errors name the
 * kernel case (`label`) and the output.
 */
export async function expectKernel(
  label: string,
  outputs: Record<string, KernelExpectation>,
  tolerance: CloseOptions = {},
): Promise<void> {
  for (const [name, output] of Object.entries(outputs)) {
    const what = `${label}: ${name}`;
    if (output.shape && formatShape(output.actual.shape) !== formatShape(output.shape)) {
      throw new Error(
        `${what}: shape ${formatShape(output.actual.shape)}, expected ${formatShape(output.shape)}`,
      );
    }
    const actual = await output.actual.toArray();
    if (output.exact) {
      const bad = Array.from(output.expected).findIndex((value, i) => actual[i] !== value);
      if (actual.length !== output.expected.length || bad >= 0) {
        throw new Error(
          `${what}: differs at [${bad}] (got ${actual[bad]}, expected ${output.expected[bad]}; lengths ${actual.length}, ${output.expected.length})`,
        );
      }
      continue;
    }
    expectClose(actual, output.expected, { ...tolerance, ...output.tolerance, label: what });
  }
}
