import type { AdamWOptions } from './adamw.js';

/**
 * Plain float64 AdamW step (torch.optim.AdamW's formula, see adamwStep). Returns the updated
 * parameter and moments; the inputs are not modified.
 */
export function adamwReference(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  options: AdamWOptions,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const { lr, step } = options;
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0.01;
  const stepSize = lr / (1 - beta1 ** step);
  const correction2Sqrt = Math.sqrt(1 - beta2 ** step);
  const n = param.length;
  const out = { param: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    const newM = m[i] + (1 - beta1) * (g - m[i]);
    const newV = beta2 * v[i] + (1 - beta2) * g * g;
    const denom = Math.sqrt(newV) / correction2Sqrt + eps;
    out.m[i] = newM;
    out.v[i] = newV;
    out.param[i] = param[i] * (1 - lr * weightDecay) - (stepSize * newM) / denom;
  }
  return out;
}
