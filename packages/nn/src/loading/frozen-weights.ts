import { fitsFormat, isQuantized, type PackedFormat, packWeight } from '@webtune/tensors';
import { ModelError } from '../errors.js';
import type { CausalLM } from '../models/llama.js';
import { Linear } from '../module/layers.js';

/**
 * How a frozen base is stored on the device. `f32`: plain tensors. Otherwise the projections of
 * the decoder layers (q/k/v/o, gate/up/down: the weights LoRA targets and most of a model's
 * bytes) are packed: `f16`/`bf16` halves, `q8_0`/`q4_0` ggml blocks. A projection whose input
 * size is not a whole number of 32-value blocks falls back to f16 (llama.cpp also falls back for
 * such rows). Embeddings, the LM head and norms stay f32.
 */
export type BaseFormat = 'f32' | PackedFormat;

/** The Linear whose weight `name` a packed load stores packed, or null. */
export function packedTarget(model: CausalLM, name: string): Linear | null {
  if (!/^model\.layers\.\d+\..+\.weight$/.test(name)) return null;
  const owner = model.getSubmodule(name.slice(0, name.lastIndexOf('.')));
  return owner instanceof Linear ? owner : null;
}

/** The format a weight of `cols` inputs is stored in under `format`. */
export function formatFor(format: PackedFormat, cols: number): PackedFormat {
  return fitsFormat(format, cols) ? format : 'f16';
}

export interface PackSummary {
  /** Weights stored in the asked format, and those that fell back to f16. */
  packed: number;
  fallback: number;
  /** Device bytes of the packed weights, and what they took in f32. */
  bytes: number;
  f32Bytes: number;
}

/**
 * Packs the frozen projections of an f32 model in place (each weight is read back, encoded on the
 * host and its f32 tensor freed, one at a time). Loading with `baseFormat` packs on the way
 * instead and never holds the f32 copy; this is for a model already on the device.
 */
export async function packFrozenWeights(model: CausalLM, format: PackedFormat): Promise<PackSummary> {
  const summary: PackSummary = { packed: 0, fallback: 0, bytes: 0, f32Bytes: 0 };
  for (const [name] of [...model.namedSlots()]) {
    const target = packedTarget(model, name);
    if (!target) continue;
    const tensor = target.optionalParameter('weight');
    if (!tensor) continue;
    if (tensor.dtype !== 'f32') {
      throw new ModelError(`packFrozenWeights: ${name} is ${tensor.dtype}; pack an f32 model`);
    }
    const values = (await tensor.toArray()) as Float32Array;
    const chosen = formatFor(format, target.inFeatures);
    const weight = packWeight(model.device, values, [target.outFeatures, target.inFeatures], chosen);
    target.setPackedParameter('weight', weight);
    record(summary, format, chosen, weight.byteLength, values.length * 4);
  }
  return summary;
}

export function record(
  summary: PackSummary,
  asked: PackedFormat,
  chosen: PackedFormat,
  bytes: number,
  f32Bytes: number,
): void {
  if (chosen === asked) summary.packed++;
  else summary.fallback++;
  summary.bytes += bytes;
  summary.f32Bytes += f32Bytes;
}

/** Whether a format keeps gradients of the weight impossible (every packed format is frozen). */
export function describeBaseFormat(format: BaseFormat): string {
  if (format === 'f32') return 'f32';
  return isQuantized(format) ? `${format} (quantized, frozen)` : `${format} (half precision, frozen)`;
}
