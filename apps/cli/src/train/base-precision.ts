/**
 * How a training config's precision keys pick the storage of the frozen base (LLaMA-Factory's
 * quantization_bit, quantization_type, double_quantization, bf16, fp16, pure_bf16), and the memory
 * plan a run is checked against before anything loads.
 *
 * - quantization_bit 8 -> ggml Q8_0 blocks; 4 -> ggml Q4_0 blocks (quantization_type nf4 and fp4
 *   both map to Q4_0: webtune's 4-bit format is blockwise round-to-nearest with an f16 scale per
 *   32 weights; double_quantization is accepted and has nothing to do: the scales are 16-bit).
 * - bf16 / pure_bf16 -> bf16 base, fp16 -> f16 base. Half-precision weights are decoded from
 *   their bits inside the kernels, so they need no shader-f16 and run on every adapter.
 * - infer_dtype float32 / float16 / bfloat16 pick f32 / f16 / bf16; auto (the default) is the best
 *   the adapter supports: f16 for LoRA and DoRA, f32 for full and freeze tuning and pissa_init.
 *   float32 is exact against PyTorch float32. Activations, LoRA weights, gradients and optimizer
 *   state are f32 in every case.
 */
import { totalmem } from 'node:os';
import type { BaseFormat, ModelConfig } from '@webtune/nn';
import {
  formatMemoryPlan,
  type MemoryPlan,
  memoryPlanInputOf,
  type PlanDevice,
  baseFormatOf as planBaseFormat,
  planMemory,
  type RunPlan,
} from '@webtune/train';
import { UsageError } from '../ui.js';

type Values = Record<string, unknown>;

/**
 * The frozen base's storage for a config (@webtune/train's baseFormatOf, the planner's rule);
 * throws a one-line UsageError on a bad combination.
 */
export function baseFormatOf(v: Values): BaseFormat {
  const { format, problems } = planBaseFormat({
    quantization_bit: (v.quantization_bit as number | null | undefined) ?? null,
    quantization_type: String(v.quantization_type ?? 'nf4'),
    bf16: v.bf16 === true,
    fp16: v.fp16 === true,
    pure_bf16: v.pure_bf16 === true,
    finetuning_type: String(v.finetuning_type ?? 'lora'),
    infer_dtype: String(v.infer_dtype ?? 'auto'),
    use_dora: v.use_dora === true,
    pissa_init: v.pissa_init === true,
  });
  if (problems.length > 0) throw new UsageError(problems[0]);
  return format;
}

/**
 * The memory budget runs are checked against: WEBTUNE_MEMORY_BUDGET (bytes, or a number with
 * KiB/MiB/GiB), else, on a software adapter whose buffers live in host memory, 80% of it; else none.
 */
export function memoryBudget(adapterClass: string | null): number | undefined {
  const given = process.env.WEBTUNE_MEMORY_BUDGET;
  if (given) {
    const match = /^\s*([\d.]+)\s*(KiB|MiB|GiB|KB|MB|GB)?\s*$/i.exec(given);
    if (!match) throw new UsageError(`WEBTUNE_MEMORY_BUDGET must be bytes or like 4GiB, got "${given}"`);
    const unit = (match[2] ?? '').toLowerCase();
    const scale = unit.startsWith('g')
      ? 1024 ** 3
      : unit.startsWith('m')
        ? 1024 ** 2
        : unit.startsWith('k')
          ? 1024
          : 1;
    return Number(match[1]) * scale;
  }
  return adapterClass === 'software' ? Math.floor(totalmem() * 0.8) : undefined;
}

/**
 * The memory plan of a planned run for a model config and a device (@webtune/train's
 * memoryPlanInputOf: the reading of the config the board uses too).
 */
export function trainingMemoryPlan(plan: RunPlan, config: ModelConfig, device: PlanDevice): MemoryPlan {
  return planMemory(memoryPlanInputOf(plan, config, device));
}

/** Whether the run checkpoints layers (gradient_checkpointing, else not disable_gradient_checkpointing). */
export function trainingCheckpointing(v: Values): boolean {
  return Boolean((v.gradient_checkpointing as boolean | null) ?? !v.disable_gradient_checkpointing);
}

/** Throws the plan's problems and advice as one UsageError when the run cannot fit. */
export function refuseIfTooLarge(plan: MemoryPlan): void {
  if (plan.fits) return;
  throw new UsageError(`this run does not fit: ${plan.problems.join('; ')}. Try: ${plan.advice.join('; ')}`);
}

export { formatMemoryPlan };
