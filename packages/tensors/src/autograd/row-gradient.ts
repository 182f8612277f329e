import { TensorError } from '../device/errors.js';
import type { AutogradBackend } from './backend.js';
import {
  backward,
  enableGrad,
  isGradEnabled,
  isTracked,
  leavesReached,
  nextSequence,
  noGrad,
  type Rule,
  record,
  releaseSince,
  requiresGrad,
  takeGrad,
} from './engine.js';

/**
 * A row-wise function differentiated in its forward: `fn(x)` maps x [rows, ...] to one value per
 * row, [rows], where value r depends on row r of x alone and on no tensor that requires grad
 * (a frozen classifier and its per-token loss). Its Jacobian is then block-diagonal, so the
 * gradient with respect to x for any incoming gradient g is g[r] times the row gradient of
 * value r, which the forward computes once (back-propagating ones) and keeps: backward is one
 * multiply. Nothing `fn` computed outlives the forward except the values and that row gradient
 * (x's shape): a chunked classifier keeps neither its logits nor recomputes them.
 *
 * Throws when `fn` reaches a tensor that requires grad other than x (its gradient would need
 * g before g exists): keep such a function under checkpoint() instead.
 */
export function rowGradientWith<T extends object>(backend: AutogradBackend<T>, fn: (x: T) => T, input: T): T {
  if (!isGradEnabled() || !isTracked(input)) return fn(input);
  const shape = backend.shape(input);
  const { output, gradient } = backend.scope(input, () => {
    const handle = requiresGrad(backend.retain(input));
    const start = nextSequence();
    try {
      const values = enableGrad(() => fn(handle));
      const valueShape = backend.shape(values);
      if (valueShape.length !== 1 || valueShape[0] !== shape[0]) {
        throw new TensorError(
          `rowGradient: the function must give one value per row of its input [${shape.join(', ')}], got [${valueShape.join(', ')}]`,
        );
      }
      if (!isTracked(values)) {
        return { output: values, gradient: noGrad(() => backend.full(input, shape, 0)) };
      }
      const others = leavesReached(values, start).filter((leaf) => leaf !== handle);
      if (others.length > 0) {
        throw new TensorError(
          `rowGradient: the function uses ${others.length} tensor(s) that require grad besides its input (a classifier that trains); use checkpoint() for it`,
        );
      }
      const ones = backend.full(values, valueShape, 1);
      backward(values, ones, { stopBefore: start });
      const gradient = takeGrad(handle) ?? backend.full(input, shape, 0);
      return { output: values, gradient };
    } catch (error) {
      releaseSince(start);
      throw error;
    } finally {
      requiresGrad(handle, false);
      backend.release(handle);
    }
  });
  const rule: Rule = {
    inputs: () => [input],
    forward: () => output,
    backward: <U extends object>(ops: AutogradBackend<U>, grad: U, saved: readonly U[]) => {
      const rows = ops.shape(grad)[0];
      const perRow = ops.reshape(grad, [rows, ...shape.slice(1).map(() => 1)]);
      return [ops.binary('mul', saved[0], perRow)];
    },
  };
  record(backend, rule, output as object, [input], [], [gradient]);
  // The tape holds its own handle to the row gradient.
  backend.release(gradient);
  return output;
}
