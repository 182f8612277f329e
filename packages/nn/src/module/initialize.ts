import { SeededRandom } from '../generation/sampling.js';
import type { CausalLM } from '../models/llama.js';

export interface InitializeOptions {
  /** Seed of the host generator (default 0): the same seed gives the same weights everywhere. */
  seed?: number;
  /** Standard deviation of linear and embedding weights (config.json initializer_range, default 0.02). */
  std?: number;
  dtype?: 'f32' | 'f16';
}

/**
 * Fills every empty parameter slot as transformers initialises a Llama model: weights of linear
 * layers and the embedding from a normal distribution N(0, std), norms with ones, biases with
 * zeros. Values are drawn on the host from a seeded generator, one tensor at a time. Ties the
 * head afterwards when the config says so.
 */
export function initializeModel(model: CausalLM, options: InitializeOptions = {}): CausalLM {
  const random = new SeededRandom(options.seed ?? 0);
  const raw = model.config.raw.initializer_range;
  const std = options.std ?? (typeof raw === 'number' ? raw : 0.02);
  const dtype = options.dtype ?? 'f32';
  const tiedHead = model.config.tieWordEmbeddings;
  for (const [name, slot] of model.namedSlots()) {
    if (slot.tensor || (tiedHead && name === 'lm_head.weight')) continue;
    const size = slot.shape.reduce((product, d) => product * d, 1);
    const values = new Float32Array(size);
    // Gemma's norms scale by (1 + weight): zeros are their identity, as Hugging Face initialises them.
    if (name.endsWith('norm.weight')) values.fill(model.config.normAddsOne ? 0 : 1);
    else if (!name.endsWith('.bias')) {
      for (let i = 0; i < size; i += 2) {
        // Box-Muller: two normals from two uniforms.
        const radius = std * Math.sqrt(-2 * Math.log(1 - random.next()));
        const angle = 2 * Math.PI * random.next();
        values[i] = radius * Math.cos(angle);
        if (i + 1 < size) values[i + 1] = radius * Math.sin(angle);
      }
    }
    model.setParameterByName(name, model.device.fromArray(values, slot.shape, dtype).keep());
  }
  model.tieWeights();
  return model;
}
