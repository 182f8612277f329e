import type { BaseFormat, ModelConfig } from '@webtune/nn';
import type { RunPlan } from '../plan/run-plan.js';
import { logitsChunkRows as chunkRowsOf } from '../tasks/logits-chunks.js';
import type { MemoryPlanInput, PlanModelShape } from './memory-plan.js';

/** What the memory plan needs to know of the device a run will use. */
export interface PlanDevice {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** A memory budget: a browser tab's, WEBTUNE_MEMORY_BUDGET, or host memory on a software adapter. */
  budgetBytes?: number;
  /** The device's `tuning.matmulOuterSegments` (software adapters read large operands in slices). */
  matmulOuterSegments?: boolean;
  /** Whether the adapter has shader-f16 (false: f16 activations stay f32); default true. */
  hasF16?: boolean;
}

/**
 * The memory plan's input for a planned run: the one reading of a run's config that the CLI
 * (`train`, `--dry-run`) and the board both use, so they agree on what a run needs.
 * `baseFormat` defaults to the plan's; the board passes the format the loaded base is held in.
 */
export function memoryPlanInputOf(
  plan: RunPlan,
  model: PlanModelShape | ModelConfig,
  device: PlanDevice,
  baseFormat: BaseFormat = plan.baseFormat,
): MemoryPlanInput {
  const { config, trainingArguments } = plan;
  const targets = (
    Array.isArray(config.lora_target) ? config.lora_target : String(config.lora_target ?? 'all').split(',')
  )
    .map((name) => String(name).trim())
    .filter(Boolean);
  const all = targets.length === 0 || targets.includes('all') || targets.includes('all-linear');
  const saved = (
    Array.isArray(config.additional_target)
      ? config.additional_target
      : String(config.additional_target ?? '').split(',')
  ).map((name) => String(name).trim());
  // Freeze tuning is planned as full (an upper bound); the bottleneck adapter like LoRA (a few
  // small trainable matrices per layer beside a frozen base).
  const full = config.finetuning_type === 'full' || config.finetuning_type === 'freeze';
  const trainedTables = { embedding: saved.includes('embed_tokens'), head: saved.includes('lm_head') };
  const batchSize = trainingArguments.perDeviceTrainBatchSize ?? 1;
  // The tasks' rule (logitsChunkRows) at the longest micro-batch. A tied table that trains is the
  // head too.
  const headFrozen =
    !full && !trainedTables.head && !(model.tieWordEmbeddings === true && trainedTables.embedding);
  const logitsChunkRows = chunkRowsOf(plan.logitsChunkRows, {
    rows: batchSize * plan.data.cutoffLen,
    vocabSize: model.vocabSize,
    headFrozen,
    maxBindingBytes: device.maxStorageBufferBindingSize,
  });
  return {
    model,
    baseFormat,
    finetuningType: full ? 'full' : 'lora',
    lora: {
      r: Number(config.lora_rank ?? 8),
      targetsPerLayer: all ? 7 : Math.min(7, targets.length),
      dora: config.use_dora === true,
      dropout: Number(config.lora_dropout ?? 0) > 0,
      // additional_target (PEFT's modules_to_save): the table and the head trained whole.
      trainedTables,
    },
    batchSize,
    sequenceLength: plan.data.cutoffLen,
    gradientCheckpointing: trainingArguments.gradientCheckpointing ?? true,
    checkpointDtype: trainingArguments.checkpointDtype ?? 'f32',
    activationDtype: device.hasF16 === false ? 'f32' : (trainingArguments.activationDtype ?? 'f32'),
    matmulOuterSegments: device.matmulOuterSegments ?? false,
    ...(logitsChunkRows === undefined ? {} : { logitsChunkRows }),
    limits: {
      maxBufferSize: device.maxBufferSize,
      maxStorageBufferBindingSize: device.maxStorageBufferBindingSize,
      ...(device.budgetBytes === undefined ? {} : { budgetBytes: device.budgetBytes }),
    },
  };
}
