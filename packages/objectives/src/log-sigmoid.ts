import { autograd, type Tensor } from '@webtune/tensors';

/**
 * log(sigmoid(x)), differentiable and stable for large |x|:
 * min(x, 0) - log(1 + exp(-|x|)). exp never sees a positive argument, so nothing overflows, and
 * the gradient at 0 is 1/2 as it should be (minimum splits ties, |x|' is 0 there).
 */
export function logSigmoid(x: Tensor): Tensor {
  const softplusOfNegativeAbs = autograd.log(autograd.add(autograd.exp(autograd.neg(autograd.abs(x))), 1));
  return autograd.sub(autograd.minimum(x, 0), softplusOfNegativeAbs);
}
