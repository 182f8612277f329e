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
  /**
   * Seed of the dropout masks. A layer's mask is a pure function of this seed, the layer's
   * module path and the input's shape (see `layerSeed`): a forward run again with the same seed
   * (gradient checkpointing's recomputation, a resumed run) drops the same elements. The trainer
   * sets a new seed for every micro-batch, derived from the run's seed, the step and the
   * micro-batch; a layer called twice under one seed draws the same mask both times.
   */
  seed: number;
}

/** A runtime with no adapter active, in evaluation mode. */
export function createRuntime(seed = 0): AdapterRuntime {
  return { activeAdapter: null, disabled: false, training: false, seed };
}

/** MurmurHash3's 32-bit finaliser (a bijection of 32-bit integers). */
function mix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** 32-bit hash of a layer's key (FNV-1a over its UTF-16 code units, then finalised). */
export function hashLayerKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return mix32(hash);
}

/**
 * Seed of one layer's dropout masks (used with counter offset 0): a pure function of the runtime
 * seed and the layer's key (its kind and module path), below 2^53 as the tensors' generator
 * wants. For one key, distinct runtime seeds below 2^32 give distinct layer seeds; the generator
 * derives unrelated streams from nearby seeds, so layers and micro-batches draw independent masks.
 */
export function layerSeed(runtime: AdapterRuntime, key: string): number {
  const hash = hashLayerKey(key);
  const seed = runtime.seed;
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  const lowWord = mix32(low ^ hash) ^ hash;
  const highBits = (mix32(high ^ mix32(lowWord ^ 0x9e3779b9)) ^ hash) & 0x1fffff;
  return highBits * 2 ** 32 + (lowWord >>> 0);
}
