import { type Shape, sameShape } from '../tensor/shape.js';
import type { AutogradBackend } from './backend.js';
import type { BackwardContext, Rule } from './engine.js';

/*
 * The pieces every gradient rule is written with (rules.ts, linear-rules.ts): the rule builder,
 * the sum of a broadcast gradient back to its input's shape and the argument pickers.
 */

export type Ops = AutogradBackend<object>;
export type T = object;
export type Args = readonly unknown[];

/** Builds a rule from a plain forward call; `save` picks what backward reads. */
export function rule(
  inputs: (args: Args) => readonly unknown[],
  forward: (o: Ops, args: Args, recording: boolean) => unknown,
  backward: (o: Ops, g: T, saved: readonly T[], context: BackwardContext) => readonly (T | null | false)[],
  extra: Pick<Rule, 'save' | 'output'> = {},
): Rule {
  return {
    inputs,
    forward: forward as Rule['forward'],
    backward: backward as Rule['backward'],
    ...extra,
  };
}

/** Sums a broadcast gradient back to the shape of the input it came from. */
export function sumTo(o: Ops, g: T, shape: Shape): T {
  const from = o.shape(g);
  if (sameShape(from, shape)) return g;
  let out = g;
  const lead = from.length - shape.length;
  if (lead > 0) out = o.sum(o.reshape(out, [-1, ...from.slice(lead)]), 0, false);
  const now = o.shape(out);
  for (let axis = 0; axis < shape.length; axis++) {
    if (shape[axis] === 1 && now[axis] !== 1) out = o.sum(out, axis, true);
  }
  return o.reshape(out, shape);
}

export const isTensor = (x: unknown): x is T => typeof x === 'object' && x !== null;
export const first = (args: Args) => [args[0]];
export const firstTwo = (args: Args) => [args[0], args[1]];
export const shapeOf = (c: BackwardContext, i: number) => c.shapes[i] as Shape;
