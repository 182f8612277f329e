import { quantize } from '@webtune/gguf';
import {
  type Device,
  fitsFormat,
  isQuantized,
  type PackedFormat,
  type PackedWeight,
  packedWeightFromBytes,
  packWeight,
} from '@webtune/tensors';
import { ModelError } from '../errors.js';
import type { CausalLM } from '../models/llama.js';
import { Linear } from '../module/layers.js';

/**
 * How a frozen base is stored on the device. `f32`: plain tensors. Otherwise the projections of
 * the decoder layers (q/k/v/o, gate/up/down: the weights LoRA targets and most of a model's
 * bytes) are packed: `f16`/`bf16` halves, `q8_0`/`q4_0`/`q4_k` ggml blocks. A projection whose
 * input size is not a whole number of the format's blocks falls back (q4_k to q4_0 for rows of
 * whole 32-value blocks, then f16; llama.cpp also falls back for such rows). Embeddings, the LM
 * head and norms stay f32.
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
  if (fitsFormat(format, cols)) return format;
  return format === 'q4_k' && fitsFormat('q4_0', cols) ? 'q4_0' : 'f16';
}

/**
 * Packs f32 values [rows, cols] in `format` on the device: Q4_K through @webtune/gguf's quantizer
 * (the bytes llama.cpp-compatible files hold), the other formats through the tensors encoder.
 */
export function packFrozen(
  device: Device,
  values: Float32Array,
  shape: readonly [number, number],
  format: PackedFormat,
): PackedWeight {
  if (format === 'q4_k') return packedWeightFromBytes(device, format, shape, quantize('Q4_K', values));
  return packWeight(device, values, shape, format);
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
    const weight = packFrozen(model.device, values, [target.outFeatures, target.inFeatures], chosen);
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
