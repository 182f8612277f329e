/**
 * How a config's precision keys pick the storage of the frozen base (LLaMA-Factory's
 * quantization_bit, quantization_type, bf16, fp16, pure_bf16): 8 bits -> ggml Q8_0 blocks,
 * 4 bits -> Q4_0 (nf4 and fp4 both), bf16 / pure_bf16 -> bf16, fp16 -> f16, else f32. Only adapters
 * train on a quantized or half-precision base. Activations, adapters, gradients and optimizer
 * state are f32 in every case.
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
    } else if (bits === 4 && config.quantization_type !== 'nf4' && config.quantization_type !== 'fp4') {
      problems.push(
        `quantization_type must be nf4 or fp4 (both train on Q4_0 blocks), got ${config.quantization_type}`,
      );
    } else if (config.finetuning_type !== 'lora') {
      problems.push(
        `quantization_bit: ${bits} with finetuning_type: ${config.finetuning_type}: a quantized base is frozen and takes no gradient, so only adapters train on it; use finetuning_type: lora (QLoRA) or drop quantization_bit`,
      );
    }
    return { format: bits === 8 ? 'q8_0' : 'q4_0', problems };
  }
  const bf16 = config.bf16 || config.pure_bf16;
  if (bf16 && config.fp16) problems.push('bf16 and fp16 exclude each other: pick one');
  if (bf16 || config.fp16) {
    if (config.finetuning_type !== 'lora') {
      const key = bf16 ? 'bf16' : 'fp16';
      problems.push(
        `${key}: true stores the base as frozen half-precision weights, which full and freeze tuning would have to train; use finetuning_type: lora, or drop ${key} to train in f32`,
      );
    }
    return { format: bf16 ? 'bf16' : 'f16', problems };
  }
  return { format: 'f32', problems };
}
