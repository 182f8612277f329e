import { type BaseFormat, formatFor, type ModelConfig, tableFormat } from '@webtune/nn';
import { bitsPerWeight } from '@webtune/tensors';
import {
  extraActivationsPerToken,
  layerNorms,
  layerProjections,
  type PlanArchitectureFacts,
} from './architecture-shapes.js';

/** What a browser tab can usually hold on the GPU before the page is killed (a cautious figure). */
export const BROWSER_TAB_BUDGET = 4 * 1024 ** 3;

export type PlanModelShape = Pick<
  ModelConfig,
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numHiddenLayers'
  | 'numAttentionHeads'
  | 'numKeyValueHeads'
  | 'headDim'
  | 'vocabSize'
  | 'tieWordEmbeddings'
> &
  PlanArchitectureFacts;

export interface MemoryPlanInput {
  model: PlanModelShape;
  /** Storage of the frozen decoder projections (see @webtune/nn's BaseFormat). */
  baseFormat: BaseFormat;
  /** `none`: inference only (generation, eval): no gradients, no optimizer, a KV cache. */
  finetuningType: 'lora' | 'full' | 'none';
  /** LoRA rank and how many of the 7 projections of a layer it targets (all-linear: 7). */
  lora?: { r: number; targetsPerLayer: number; dora?: boolean };
  batchSize: number;
  sequenceLength: number;
  gradientCheckpointing: boolean;
  /** The adapter's limits, and a memory budget (a browser tab's, or the GPU's). */
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; budgetBytes?: number };
}

export interface MemoryPlan {
  /** Bytes on the device, by kind. */
  weights: number;
  trainable: number;
  gradients: number;
  optimizer: number;
  /** Activations kept for backward, without and with gradient checkpointing. */
  activations: number;
  activationsCheckpointed: number;
  /** The classifier's logits and their gradient ([tokens, vocab] f32, twice). */
  logits: number;
  /** Temporary copies the f32 matmul makes of its largest operand. */
  workspace: number;
  /** Generation's KV cache at sequenceLength (inference). */
  kvCache: number;
  /** The predicted peak: weights + trainable state + the activations the run keeps + the rest. */
  peak: number;
  /** The largest single tensor (above the binding size it is split in chunks of rows). */
  largestTensor: number;
  budget: number;
  fits: boolean;
  /** Why it does not fit, and what would help (most effective first). */
  problems: string[];
  advice: string[];
}

const F32 = 4;

/** Buffer size the device's pool hands out for a request (size classes: at most 25% slack). */
function pooled(bytes: number): number {
  if (bytes <= 65536) return Math.ceil(Math.max(16, bytes) / 256) * 256;
  const step = 2 ** Math.floor(Math.log2(bytes)) / 4;
  return Math.ceil(bytes / step) * step;
}

/**
 * The memory a run needs on the device, from the model's shape, the base format, the method and
 * the batch, before anything is loaded. Figures follow what webtune allocates: f32 embeddings,
 * head and norms; decoder projections in the base format (rows that are not whole 32-value
 * blocks fall back to f16); LoRA A/B, their gradients and AdamW's two moments in f32.
 */
export function planMemory(input: MemoryPlanInput): MemoryPlan {
  const m = input.model;
  const H = m.hiddenSize;
  const I = m.intermediateSize;
  const qDim = m.numAttentionHeads * m.headDim;
  const kvDim = m.numKeyValueHeads * m.headDim;
  // [out, in] of the projections of a layer (7; Phi-3's fused ones: 4).
  const projections = layerProjections(m);
  const projectionBytes = ([out, inFeatures]: [number, number]) => {
    if (input.baseFormat === 'f32') return pooled(out * inFeatures * F32);
    const format = formatFor(input.baseFormat, inFeatures);
    return pooled(Math.ceil((out * inFeatures * bitsPerWeight(format)) / 8));
  };
  const binding = input.limits.maxStorageBufferBindingSize;
  // A tensor above one binding is split in chunks of whole rows, each its own pooled buffer.
  const chunked = (bytes: number, rowBytes: number) => {
    if (bytes <= binding) return pooled(bytes);
    const rowsPerChunk = Math.max(1, Math.floor(binding / rowBytes));
    const chunkBytes = rowsPerChunk * rowBytes;
    const full = Math.floor(bytes / chunkBytes);
    const rest = bytes - full * chunkBytes;
    return full * pooled(chunkBytes) + (rest > 0 ? pooled(rest) : 0);
  };
  // The token table (and an untied head): f32, or Q8_0 under a quantized base (tableFormat).
  const table = input.baseFormat === 'f32' ? null : tableFormat(input.baseFormat);
  const tableRowBytes = table === null ? H * F32 : Math.ceil((H * bitsPerWeight(formatFor(table, H))) / 8);
  const embedding = chunked(m.vocabSize * tableRowBytes, tableRowBytes);
  const head = m.tieWordEmbeddings ? 0 : embedding;
  const normCounts = layerNorms(m);
  const norms =
    (normCounts.hidden * m.numHiddenLayers + 1) * pooled(H * F32) +
    normCounts.head * m.numHiddenLayers * pooled(m.headDim * F32);
  const layerWeights = projections.reduce((sum, p) => sum + projectionBytes(p), 0);
  const weights = embedding + head + norms + m.numHiddenLayers * layerWeights;

  const tokens = input.batchSize * input.sequenceLength;
  const training = input.finetuningType !== 'none';
  let trainableElements = 0;
  let loraActivations = 0;
  if (input.finetuningType === 'lora') {
    const lora = input.lora ?? { r: 8, targetsPerLayer: 7 };
    const targets = projections.slice(0, lora.targetsPerLayer);
    for (const [out, inFeatures] of targets) {
      trainableElements += lora.r * (out + inFeatures) + (lora.dora ? out : 0);
      // A x, and the scaled B A x added to the base output.
      loraActivations += tokens * (lora.r + out);
    }
    trainableElements *= m.numHiddenLayers;
    loraActivations *= m.numHiddenLayers * F32;
  } else if (input.finetuningType === 'full') {
    trainableElements = weights / F32;
  }
  const trainable = input.finetuningType === 'lora' ? trainableElements * F32 : 0;
  const gradients = training ? trainableElements * F32 : 0;
  const optimizer = training ? 2 * trainableElements * F32 : 0;

  // Per layer, what the tape keeps: norm inputs and outputs, q/k/v before and after rotary,
  // the attention output and its logsumexp, the residual stream, gate, up and their product.
  const perLayer =
    tokens * (7 * H + 2 * qDim + 3 * kvDim + m.numAttentionHeads + 3 * I + extraActivationsPerToken(m)) * F32;
  const layers = m.numHiddenLayers * perLayer + loraActivations;
  const activations = training ? layers + tokens * H * F32 : 0;
  // Checkpointing keeps each layer's input and recomputes one layer at a time in backward.
  const activationsCheckpointed = training
    ? m.numHiddenLayers * tokens * H * F32 + perLayer + loraActivations / m.numHiddenLayers
    : 0;
  const logits = (training ? 2 : 1) * tokens * m.vocabSize * F32;
  // The f32 matmul packs an operand whose rows are a multiple of 1,024 values (or not of 4):
  // the head (or the tied embedding) is copied once per product.
  // A packed head is decoded inside its kernel and needs no copy.
  const packs = table === null && (H % 1024 === 0 || H % 4 !== 0);
  // The copy is made per row segment of at most one binding (packedRowLimit), so it never holds
  // more than one binding of the table (the 0.6B shape measured 1.50 GiB against a plan of 2.18
  // GiB that counted the whole 593 MiB table).
  const workspace = packs ? Math.min(embedding, pooled(binding)) : 0;
  const kvCache = training ? 0 : 2 * m.numHiddenLayers * input.batchSize * input.sequenceLength * kvDim * F32;
  const kept = input.gradientCheckpointing ? activationsCheckpointed : activations;
  const peak = Math.round(
    weights + trainable + gradients + optimizer + kept * 1.1 + logits + workspace + kvCache,
  );
  const largestTensor = Math.max(m.vocabSize * tableRowBytes, tokens * m.vocabSize * F32);
  const widestRow = Math.max(m.vocabSize, I, H) * F32;

  const budget = input.limits.budgetBytes ?? Number.POSITIVE_INFINITY;
  const problems: string[] = [];
  const advice: string[] = [];
  if (widestRow > Math.min(binding, input.limits.maxBufferSize)) {
    problems.push(
      `one row of the logits (${formatPlanBytes(widestRow)}) exceeds this adapter's storage binding limit (${formatPlanBytes(binding)}); tensors are split only between rows`,
    );
  }
  if (peak > budget) {
    problems.push(`the run needs about ${formatPlanBytes(peak)}, the budget is ${formatPlanBytes(budget)}`);
    if (input.baseFormat === 'f32' || input.baseFormat === 'f16' || input.baseFormat === 'bf16') {
      advice.push('quantize the base: quantization_bit: 4 (or 8) with finetuning_type: lora');
    }
    if (input.finetuningType === 'full')
      advice.push('train LoRA instead of the full model (finetuning_type: lora)');
    if (training && !input.gradientCheckpointing && activations > activationsCheckpointed) {
      advice.push(
        `turn gradient checkpointing on (activations ${formatPlanBytes(activations)} -> ${formatPlanBytes(activationsCheckpointed)})`,
      );
    }
    if (input.batchSize > 1)
      advice.push('a smaller batch (per_device_train_batch_size) with gradient_accumulation_steps');
    advice.push('a shorter cutoff_len');
  }
  return {
    weights,
    trainable,
    gradients,
    optimizer,
    activations,
    activationsCheckpointed,
    logits,
    workspace,
    kvCache,
    peak,
    largestTensor,
    budget,
    fits: problems.length === 0,
    problems,
    advice,
  };
}

export function formatPlanBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unlimited';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The plan as aligned lines for a terminal (`webtune train --dry-run`). */
export function formatMemoryPlan(plan: MemoryPlan, gradientCheckpointing: boolean): string[] {
  const row = (label: string, bytes: number) => `  ${label.padEnd(34)}${formatPlanBytes(bytes).padStart(12)}`;
  const lines = [
    row('weights', plan.weights),
    row('trainable parameters', plan.trainable),
    row('gradients', plan.gradients),
    row('optimizer state (AdamW)', plan.optimizer),
    row(`activations${gradientCheckpointing ? '' : ' (kept)'}`, plan.activations),
    row(`activations, checkpointed${gradientCheckpointing ? ' (kept)' : ''}`, plan.activationsCheckpointed),
    row('logits and their gradient', plan.logits),
    row('matmul workspace', plan.workspace),
    row('KV cache', plan.kvCache),
    row('predicted peak', plan.peak),
    row('largest tensor', plan.largestTensor),
    `  ${'budget'.padEnd(34)}${formatPlanBytes(plan.budget).padStart(12)}`,
  ];
  for (const problem of plan.problems) lines.push(`  does not fit: ${problem}`);
  for (const advice of plan.advice) lines.push(`  advice: ${advice}`);
  return lines;
}
