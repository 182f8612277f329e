/**
 * State every adapter layer of one model reads at each forward: which adapter is active, whether
 * adapters are switched off (DPO's reference pass), and whether dropout applies. One object is
 * shared by all layers, so switching is one assignment and costs nothing per layer.
 */
export interface AdapterRuntime {
  /** The adapter layers apply; null applies none. */
  activeAdapter: string | null;
  /** True inside `withAdaptersDisabled`: every layer computes the base model's output. */
  disabled: boolean;
  /** Dropout is applied only when training. */
  training: boolean;
  /** Seed of the dropout masks (each layer draws its own stream from it). */
  seed: number;
}

/** A runtime with no adapter active, in evaluation mode. */
export function createRuntime(seed = 0): AdapterRuntime {
  return { activeAdapter: null, disabled: false, training: false, seed };
}

/** Seed of one layer's dropout stream: distinct per layer, fixed for a runtime seed. */
export function layerSeed(runtime: AdapterRuntime, ordinal: number): number {
  return (runtime.seed * 1_000_003 + ordinal * 7919) % 2 ** 52;
}
