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
import { Embedding, Linear } from '../module/layers.js';
import type { Module } from '../module/module.js';

/**
 * How a frozen base is stored on the device. `f32`: plain tensors. Otherwise the projections of
 * the decoder layers (q/k/v/o, gate/up/down: the weights LoRA targets and most of a model's
 * bytes) are packed: `f16`/`bf16` halves, `q8_0`/`q4_0`/`q4_k` ggml blocks. A projection whose
 * input size is not a whole number of the format's blocks falls back (q4_k to q4_0 for rows of
 * whole 32-value blocks, then f16; llama.cpp also falls back for such rows). The token embedding
 * and the LM head are packed too, in Q8_0 under a quantized base and in the base's halves under
 * a half-precision one (see `tableFormat`): the embedding
 * is read by a gather from the packed table, a tied head multiplies by the same packed table.
 * Norms stay f32.
 */
export type BaseFormat = 'f32' | PackedFormat;

/**
 * A weight a packed load stores packed: its owner module, [rows, cols], and whether it is the
 * token table or the LM head (stored in 8 bits under a 4-bit base, see `tableFormat`).
 */
export interface PackTarget {
  owner: Module;
  rows: number;
  cols: number;
  table: boolean;
}

/**
 * The target of weight `name` in a packed load, or null: the decoder projections (a Linear's
 * weight under `model.layers.N`), the token embedding and an untied LM head.
 */
export function packedTarget(model: CausalLM, name: string): PackTarget | null {
  if (
    name === 'model.embed_tokens.weight' ||
    (name === 'lm_head.weight' && !model.config.tieWordEmbeddings)
  ) {
    const owner = model.getSubmodule(name.slice(0, name.lastIndexOf('.')));
    if (owner instanceof Embedding)
      return { owner, rows: owner.numEmbeddings, cols: owner.embeddingDim, table: true };
    if (owner instanceof Linear)
      return { owner, rows: owner.outFeatures, cols: owner.inFeatures, table: true };
    return null;
  }
  if (!/^model\.layers\.\d+\..+\.weight$/.test(name)) return null;
  const owner = model.getSubmodule(name.slice(0, name.lastIndexOf('.')));
  return owner instanceof Linear
    ? { owner, rows: owner.outFeatures, cols: owner.inFeatures, table: false }
    : null;
}

/**
 * The format of the token table and the LM head under a base format (null keeps them f32):
 * quantized bases pack them in Q8_0 (every input and every logit goes through them, and 4 bits
 * there would cost most of the loss; llama.cpp's 4-bit mixes also spend more bits on them).
 * Half-precision bases store them in the base's own halves (f16, or bf16 bits for a bf16 base,
 * decoded in the kernels without shader-f16): at the Qwen3-0.6B shape that is 311 MB instead of
 * 622 MB. The gather, the tiled packed head and the fused decoder's head (chunked over buffers)
 * read them in place. A table that trains (modules_to_save) is decoded into an f32 copy.
 */
export function tableFormat(format: PackedFormat): PackedFormat {
  return isQuantized(format) ? 'q8_0' : format;
}

/** The format target `target` is stored in under the base format `format` (null: f32). */
export function targetFormat(target: PackTarget, format: PackedFormat): PackedFormat | null {
  if (!target.table) return formatFor(format, target.cols);
  return formatFor(tableFormat(format), target.cols);
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
    const tensor = target.owner.optionalParameter('weight');
    const chosen = targetFormat(target, format);
    if (!tensor || chosen === null) continue;
    if (tensor.dtype !== 'f32') {
      throw new ModelError(`packFrozenWeights: ${name} is ${tensor.dtype}; pack an f32 model`);
    }
    const values = (await tensor.toArray()) as Float32Array;
    const weight = packFrozen(model.device, values, [target.rows, target.cols], chosen);
    target.owner.setPackedParameter('weight', weight);
    record(
      summary,
      target.table ? tableFormat(format) : format,
      chosen,
      weight.byteLength,
      values.length * 4,
    );
  }
  model.tieWeights();
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
