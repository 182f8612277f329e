import type { AutogradBackend } from './backend.js';
import {
  backward,
  enableGrad,
  isGradEnabled,
  isTracked,
  nextSequence,
  noGrad,
  type Rule,
  record,
  requiresGrad,
  takeGrad,
} from './engine.js';

/**
 * Gradient checkpointing: runs `fn(...inputs)` without recording, in a scope that frees its
 * intermediates at once, and records one node that keeps only `inputs`. During backward the node runs `fn` again
 * with recording on and differentiates the recomputed block, so the block's activations live
 * only while its own backward runs: activation memory drops from every block's intermediates to
 * every block's inputs, for one more forward pass.
 *
 * `fn` must be deterministic (dropout is: its masks come from seed and offset) and must receive
 * every tensor that requires grad and is not a leaf through `inputs`; leaves it captures (the
 * block's parameters) get their gradients as usual.
 */
export function checkpointWith<T extends object>(
  backend: AutogradBackend<T>,
  fn: (...inputs: T[]) => T,
  inputs: readonly T[],
): T {
  if (!isGradEnabled() || inputs.length === 0) return fn(...inputs);
  // The block's intermediates are freed right away; only the output outlives the scope.
  const output = noGrad(() => backend.scope(inputs[0], () => fn(...inputs)));
  const rule: Rule = {
    inputs: () => inputs,
    forward: () => output,
    backward: <U extends object>(
      ops: AutogradBackend<U>,
      grad: U,
      saved: readonly U[],
      context: { needs: readonly boolean[] },
    ) => {
      const detached = saved.map((x, i) => {
        const handle = ops.retain(x);
        return context.needs[i] ? requiresGrad(handle) : handle;
      });
      const start = nextSequence();
      const recomputed = enableGrad(() => (fn as unknown as (...inputs: U[]) => U)(...detached));
      if (isTracked(recomputed)) backward(recomputed, grad, { stopBefore: start });
      const grads = detached.map((handle, i) => (context.needs[i] ? takeGrad(handle) : null));
      for (const handle of detached) {
        requiresGrad(handle, false);
        ops.release(handle);
      }
      return grads;
    },
  };
  record(backend, rule, output, inputs, [], inputs);
  return output;
}
