/**
 * How a config's precision keys pick the storage of the frozen base (LLaMA-Factory's
 * quantization_bit, quantization_type, bf16, fp16, pure_bf16, infer_dtype).
 *
 * The rule, first match wins:
 * 1. quantization_bit 8 -> ggml Q8_0 blocks, 4 -> Q4_0 (quantization_type nf4 and fp4 both), or
 *    ggml Q4_K super-blocks with quantization_type q4_k (webtune's own value).
 * 2. bf16 / pure_bf16 -> bf16, fp16 -> f16 (LLaMA-Factory's mixed-precision switches); a run that
 *    writes its base (full, freeze, pissa_init) keeps it in f32 and says so.
 * 3. infer_dtype float32 / float16 / bfloat16 -> f32 / f16 / bf16 (float32 pins an exact f32 base).
 * 4. infer_dtype auto (the default): the best the adapter supports. Half-precision weights are
 *    decoded from their bits inside the kernels, so every WebGPU adapter supports an f16 base:
 *    a LoRA run (DoRA included: its norms are taken from the decoded weight) gets f16; a run that
 *    must write the base gets f32: full and freeze tuning (they train base weights) and pissa_init
 *    (it rewrites the base as W - BA).
 *
 * Only adapters train on a quantized or half-precision base. Activations, adapters, gradients
 * and optimizer state are f32 in every case.
 */
import type { BaseFormat } from '@webtune/nn';

/** The keys the base format depends on. */
export interface PrecisionKeys {
  quantization_bit: number | null;
  quantization_type: string;
  bf16: boolean;
  fp16: boolean;
  pure_bf16: boolean;
  finetuning_type: string;
  /** auto (the default), float32, float16 or bfloat16. */
  infer_dtype?: string;
  use_dora?: boolean;
  pissa_init?: boolean;
}

const DTYPES: Record<string, BaseFormat> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };

/** What keeps a LoRA run's base in f32 under infer_dtype auto, or null when f16 is fine. */
function needsF32Base(config: PrecisionKeys): string | null {
  if (config.finetuning_type !== 'lora') return `finetuning_type: ${config.finetuning_type}`;
  if (config.pissa_init) return 'pissa_init';
  return null;
}

/** The frozen base's storage for a config, and the problems of its precision keys (one line each). */
export function baseFormatOf(config: PrecisionKeys): { format: BaseFormat; problems: string[] } {
  const problems: string[] = [];
  const bits = config.quantization_bit ?? null;
  if (bits !== null) {
    if (bits !== 8 && bits !== 4) {
      problems.push(
        `quantization_bit: ${bits} is not supported; use 8 (Q8_0 blocks) or 4 (Q4_0 blocks), or leave it out for an f32 base`,
      );
    } else if (bits === 4 && !['nf4', 'fp4', 'q4_k'].includes(config.quantization_type)) {
      problems.push(
        `quantization_type must be nf4 or fp4 (both train on Q4_0 blocks) or q4_k (Q4_K super-blocks), got ${config.quantization_type}`,
      );
    } else if (config.finetuning_type !== 'lora') {
      problems.push(
        `quantization_bit: ${bits} with finetuning_type: ${config.finetuning_type}: a quantized base is frozen and takes no gradient, so only adapters train on it; use finetuning_type: lora (QLoRA) or drop quantization_bit`,
      );
    }
    const four = config.quantization_type === 'q4_k' ? 'q4_k' : 'q4_0';
    return { format: bits === 8 ? 'q8_0' : four, problems };
  }
  const bf16 = config.bf16 || config.pure_bf16;
  if (bf16 && config.fp16) problems.push('bf16 and fp16 exclude each other: pick one');
  const dtype = config.infer_dtype ?? 'auto';
  if (dtype !== 'auto' && DTYPES[dtype] === undefined) {
    problems.push(`infer_dtype must be auto, float32, float16 or bfloat16, got ${dtype}`);
  }
  // bf16 / fp16 are LLaMA-Factory's mixed-precision switches: they halve a frozen base, and a run
  // that writes its base (full, freeze, pissa_init) keeps it in f32 instead of being refused.
  const mixed: BaseFormat | null = bf16 ? 'bf16' : config.fp16 ? 'f16' : null;
  if (mixed !== null) return { format: needsF32Base(config) === null ? mixed : 'f32', problems };
  const asked: BaseFormat | null = DTYPES[dtype] ?? null;
  if (asked !== null && asked !== 'f32') {
    const writer = needsF32Base(config);
    if (writer !== null) {
      problems.push(
        `infer_dtype: ${dtype} stores the base as frozen half-precision weights, which ${writer} has to write; use infer_dtype: auto or float32`,
      );
    }
    return { format: asked, problems };
  }
  if (asked === 'f32') return { format: 'f32', problems };
  return { format: needsF32Base(config) === null ? 'f16' : 'f32', problems };
}

/** One line saying why the base has the format it has (for logs and the dry run). */
export function baseFormatReason(config: PrecisionKeys): string {
  if (config.quantization_bit != null) return `quantization_bit: ${config.quantization_bit}`;
  const mixed = config.bf16
    ? 'bf16: true'
    : config.pure_bf16
      ? 'pure_bf16: true'
      : config.fp16
        ? 'fp16: true'
        : null;
  if (mixed !== null) {
    const writer = needsF32Base(config);
    return writer === null ? mixed : `${mixed} (mixed precision; ${writer} writes the base, so it stays f32)`;
  }
  const dtype = config.infer_dtype ?? 'auto';
  if (dtype !== 'auto') return `infer_dtype: ${dtype}`;
  const f32 = needsF32Base(config);
  return f32 === null
    ? 'infer_dtype: auto (f16: the best every adapter supports for a frozen LoRA base)'
    : `infer_dtype: auto (f32: ${f32} needs the f32 base)`;
}
