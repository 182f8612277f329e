import type { Tensor } from '../tensor/tensor.js';
import { checkpointWith } from './checkpoint.js';
import { type DifferentiableFunctions, differentiable } from './functions.js';
import { GPU_BACKEND } from './gpu-backend.js';
import { rowGradientWith } from './row-gradient.js';

/**
 * The differentiable ops on GPU tensors: the names, arguments and results of the plain ops
 * (`autograd.matmul(x, w, { transposeB: true })`), plus `reshape` (the differentiable
 * `x.reshape`) and the fused `swiglu`. A call records onto the tape only when grad mode is on
 * and one of its inputs requires grad; otherwise it is the plain op and keeps nothing.
 */
export const autograd: DifferentiableFunctions<Tensor> = differentiable(GPU_BACKEND);

/**
 * Gradient checkpointing of a block: `checkpoint((h) => block(h), [h])` keeps only the block's
 * inputs for backward and recomputes its forward there (see checkpoint.ts).
 */
export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[]): Tensor {
  return checkpointWith(GPU_BACKEND, fn, inputs);
}

/**
 * A row-wise function of x with no trained tensor inside (a frozen classifier and its per-token
 * loss), differentiated in its forward: `rowGradient((h) => losses(head(h)), h)` keeps only the
 * per-row gradient for backward (see row-gradient.ts).
 */
export function rowGradient(fn: (x: Tensor) => Tensor, input: Tensor): Tensor {
  return rowGradientWith(GPU_BACKEND, fn, input);
}

export type { AutogradBackend } from './backend.js';
export { checkpointWith } from './checkpoint.js';
export {
  type BackwardOptions,
  backward,
  clearTape,
  enableGrad,
  gradOf,
  isGradEnabled,
  isTracked,
  noGrad,
  requiresGrad,
  tapeSize,
  zeroGrad,
} from './engine.js';
export { type DifferentiableFunctions, differentiable } from './functions.js';
export { GPU_BACKEND } from './gpu-backend.js';
export {
  HALF_SAVED_POLICY,
  type HalfSavedPolicy,
  type SavedTensorContext,
  withHalfSavedTensors,
} from './half-saved.js';
export { rowGradientWith } from './row-gradient.js';
