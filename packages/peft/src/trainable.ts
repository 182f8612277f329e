import type { Module } from '@webtune/nn';
import { requiresGrad, type Tensor } from '@webtune/tensors';
import { type SummaryOptions, type TrainableSummary, trainableSummary } from './summary.js';

/**
 * Marks `trainable` as the leaves autograd accumulates gradients into and every other parameter
 * of `model` as frozen, so backward computes no gradient (and an optimizer keeps no state) for
 * the base weights. Returns the trainable tensors with their names, in model order.
 */
export function markTrainable(model: Module, trainable: Iterable<Tensor>): [string, Tensor][] {
  const wanted = new Set(trainable);
  const marked: [string, Tensor][] = [];
  for (const [name, tensor] of model.namedParameters()) {
    if (wanted.has(tensor)) {
      requiresGrad(tensor, true);
      marked.push([name, tensor]);
    } else {
      requiresGrad(tensor, false);
    }
  }
  return marked;
}

/** Trainable / total parameters and training memory of `model` when `trainable` train. */
export function summarizeTrainable(
  model: Module,
  trainable: Iterable<Tensor>,
  options: SummaryOptions = {},
): TrainableSummary {
  return trainableSummary(
    [...model.namedParameters()].map(([, tensor]) => tensor),
    trainable,
    options,
  );
}
