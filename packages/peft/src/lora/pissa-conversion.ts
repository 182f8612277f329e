import { PeftError } from '../errors.js';
import type { LoraConfig } from './lora-config.js';

/*
 * PiSSA -> LoRA, as PEFT's `path_initial_model_for_weight_conversion` does: an adapter of rank 2r
 * that applies to the original (pre-PiSSA) base weights, lora_alpha doubled.
 */

/** The initial PiSSA factors of an adapter by module name, kept on the host. */
export type PissaFactors = Map<string, { a: Float32Array; b: Float32Array }>;

export function convertPissaConfig(config: LoraConfig): LoraConfig {
  const double = (record: Record<string, number>) =>
    Object.fromEntries(Object.entries(record).map(([key, value]) => [key, 2 * value]));
  return {
    ...config,
    init_lora_weights: true,
    r: 2 * config.r,
    lora_alpha: config.use_rslora ? config.lora_alpha * Math.SQRT2 : 2 * config.lora_alpha,
    rank_pattern: double(config.rank_pattern),
    alpha_pattern: double(config.alpha_pattern),
  };
}

/** A' = [A; A0] (rows), B' = [B, -B0] (columns): s' B' A' = s (B A - B0 A0). */
export function convertPissaTensors(
  values: Map<string, { shape: number[]; data: Float32Array }>,
  prefix: string,
  initial: { a: Float32Array; b: Float32Array },
): void {
  const a = values.get(`${prefix}lora_A.weight`);
  const b = values.get(`${prefix}lora_B.weight`);
  if (!a || !b) throw new PeftError(`PiSSA conversion: ${prefix}lora_A / lora_B are missing`);
  const [r, inFeatures] = a.shape;
  const outFeatures = b.shape[0];
  const stackedA = new Float32Array(2 * r * inFeatures);
  stackedA.set(a.data, 0);
  stackedA.set(initial.a, r * inFeatures);
  const stackedB = new Float32Array(outFeatures * 2 * r);
  for (let i = 0; i < outFeatures; i++) {
    for (let j = 0; j < r; j++) {
      stackedB[i * 2 * r + j] = b.data[i * r + j];
      stackedB[i * 2 * r + r + j] = -initial.b[i * r + j];
    }
  }
  values.set(`${prefix}lora_A.weight`, { shape: [2 * r, inFeatures], data: stackedA });
  values.set(`${prefix}lora_B.weight`, { shape: [outFeatures, 2 * r], data: stackedB });
}
