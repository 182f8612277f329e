import { type BaseFormat, formatFor, type ModelConfig, tableFormat } from '@webtune/nn';
import { bitsPerWeight, OUTER_OPERAND_MAX_BYTES, sizeClass } from '@webtune/tensors';
import { layerNorms, layerProjections, type PlanArchitectureFacts } from './architecture-shapes.js';
import { layerActivationWidths, type PlanLora } from './layer-activations.js';

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
  lora?: PlanLora;
  batchSize: number;
  sequenceLength: number;
  gradientCheckpointing: boolean;
  /** Storage of the layer inputs checkpointing keeps (TrainingArguments.checkpointDtype; default f32). */
  checkpointDtype?: 'f32' | 'f16';
  /**
   * The matmul reads an operand stored across K that is over OUTER_OPERAND_MAX_BYTES in place,
   * in K segments, instead of copying it (the device's `tuning.matmulOuterSegments`: software
   * adapters). Default false: such an operand is counted as copied.
   */
  matmulOuterSegments?: boolean;
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
  /** Copies the f32 matmul makes of the classifier's operands (the table, the logits' gradient). */
  workspace: number;
  /** Generation's KV cache at sequenceLength (inference). */
  kvCache: number;
  /**
   * The tensors of the last layer's forward that are not kept for backward (they live until the
   * layer's scope closes; with checkpointing, also while a layer is recomputed in backward).
   */
  layerTransient: number;
  /**
   * The predicted peak: weights, trainable parameters and optimizer state, plus the largest of
   * three moments: the end of the last layer's forward, the classifier's backward (logits and
   * their gradient), and backward with every gradient accumulated.
   */
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

/** Bytes the device's buffer pool hands out for a request (its size classes: at most 25% slack). */
const pooled = sizeClass;

/**
 * The memory a run needs on the device, from the model's shape, the base format, the method and
 * the batch, before anything is loaded. Figures follow what webtune allocates: f32 embeddings,
 * head and norms; decoder projections in the base format (rows that are not whole 32-value
 * blocks fall back to f16); LoRA A/B, their gradients and AdamW's two moments in f32.
 */
export function planMemory(input: MemoryPlanInput): MemoryPlan {
  const m = input.model;
  const H = m.hiddenSize;
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
  // The token table (and an untied head): f32 under an f32 base, Q8_0 under a quantized base,
  // the base's halves (f16/bf16) under a half-precision one (tableFormat).
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
  const lora = input.finetuningType === 'lora' ? (input.lora ?? { r: 8, targetsPerLayer: 7 }) : null;
  let trainableElements = 0;
  if (lora) {
    for (const [out, inFeatures] of projections.slice(0, lora.targetsPerLayer)) {
      trainableElements += lora.r * (out + inFeatures) + (lora.dora ? out : 0);
    }
    trainableElements *= m.numHiddenLayers;
  } else if (input.finetuningType === 'full') {
    trainableElements = weights / F32;
  }
  // Each parameter, gradient and moment is its own tensor (its own pooled buffer); summed
  // elements are close enough for them (LoRA's are small, full fine-tuning's are the weights').
  // Tables trained whole under LoRA (modules_to_save): each an f32 copy in chunks of rows.
  const tablesTrained = lora
    ? Number(Boolean(lora.trainedTables?.embedding)) + Number(Boolean(lora.trainedTables?.head))
    : 0;
  const tableCopies = tablesTrained * chunked(m.vocabSize * H * F32, H * F32);
  const trainable = lora ? trainableElements * F32 + tableCopies : 0;
  const gradients = training ? trainableElements * F32 + tableCopies : 0;
  const optimizer = training ? 2 * (trainableElements * F32 + tableCopies) : 0;

  // Activations: every tensor of [tokens, width] f32 is its own pooled buffer.
  const tokenTensor = (width: number) => chunked(tokens * width * F32, width * F32);
  const widths = layerActivationWidths(m, lora);
  const keptPerLayer = widths.kept.reduce((sum, width) => sum + tokenTensor(width), 0);
  const layerTransient = training ? widths.transient.reduce((sum, width) => sum + tokenTensor(width), 0) : 0;
  // The embedding's output (the first layer's norm input) and the final norm's output.
  const outer = 2 * tokenTensor(H);
  const activations = training ? m.numHiddenLayers * keptPerLayer + outer : 0;
  // Checkpointing keeps each layer's input; in backward one layer is recomputed at a time.
  const layerInput = input.checkpointDtype === 'f16' ? chunked(tokens * H * 2, H * 2) : tokenTensor(H);
  const activationsCheckpointed = training ? m.numHiddenLayers * layerInput + outer + keptPerLayer : 0;
  // The logits are kept by the loss and their gradient is made in backward ([tokens, vocab] f32).
  const logits = (training ? 2 : 1) * chunked(tokens * m.vocabSize * F32, m.vocabSize * F32);
  // The f32 matmul copies (packs) an operand it cannot read in place (operand-plan.ts). One read
  // along the reduced dimension (x, h, a weight [out, in] under W^T) is read in place when its
  // rows are contiguous and their length is a multiple of 4 but not of 1,024 values. One stored
  // across it (a^T [K, M], a plain b [K, N]: the backward of a linear layer) is read in place
  // along its rows when its row count and K are multiples of 4 and it is at most
  // OUTER_OPERAND_MAX_BYTES (4 MiB); a larger one is copied. A packed table is decoded inside its
  // kernels and is never copied. The copy of the table is made per row segment of at most one
  // binding (packedRowLimit), so it never holds more than one binding of it (the 0.6B shape
  // measured 1.50 GiB against a plan of 2.18 GiB that counted the whole 593 MiB table).
  const awkward = (length: number) => length % 1024 === 0 || length % 4 !== 0;
  // An operand [K, rows] stored across K: copied unless matmul.ts reads it in place (readsOuter).
  // A chunked one is multiplied K segment by K segment, each at most one binding.
  // With matmulOuterSegments a large one is read in place in K segments of at most 4 MiB instead.
  const outerSegments = input.matmulOuterSegments === true;
  const copiedAcross = (rows: number, K: number) => {
    if (rows % 4 !== 0 || K % 4 !== 0) return true;
    if (outerSegments) return false;
    const segmentK = Math.min(K, Math.max(1, Math.floor(binding / (rows * F32))));
    return rows * segmentK * F32 > OUTER_OPERAND_MAX_BYTES;
  };
  // A trained head multiplies by its f32 copy whatever the base (a tied head stays with the
  // original table when only the embedding is trained).
  const headTrained = Boolean(lora?.trainedTables?.head);
  const f32Head = table === null || headTrained;
  const tableCopy = f32Head ? Math.min(chunked(m.vocabSize * H * F32, H * F32), pooled(binding)) : 0;
  // Forward, logits = h W^T: W's rows are read along the hidden size.
  const forwardCopy = awkward(H) ? tableCopy : 0;
  // Backward, dh = dlogits W: W [vocab, hidden] is stored across the vocabulary (copied above
  // 4 MiB), and the logits' gradient, read along it, is copied when the vocabulary is awkward.
  const logitsBytes = chunked(tokens * m.vocabSize * F32, m.vocabSize * F32);
  // Read in K segments, an awkward logits' gradient is copied one segment at a time.
  const segmentedTable =
    outerSegments && H % 4 === 0 && m.vocabSize % 4 === 0 && 4 * H * m.vocabSize > OUTER_OPERAND_MAX_BYTES;
  const segmentVocab = Math.max(4, 4 * Math.floor(OUTER_OPERAND_MAX_BYTES / (16 * H)));
  const logitsCopy = segmentedTable ? pooled(tokens * segmentVocab * F32) : logitsBytes;
  const inputGradientCopy = training
    ? (copiedAcross(H, m.vocabSize) ? tableCopy : 0) + (f32Head && awkward(m.vocabSize) ? logitsCopy : 0)
    : 0;
  // Then a trained head's weight gradient, dW = dlogits^T h: both operands are stored across the
  // tokens ([tokens, vocab] and [tokens, hidden]).
  const weightGradientCopy = headTrained
    ? (copiedAcross(m.vocabSize, tokens) ? logitsBytes : 0) + (copiedAcross(H, tokens) ? tokenTensor(H) : 0)
    : 0;
  const backwardCopy = Math.max(inputGradientCopy, weightGradientCopy);
  const workspace = Math.max(forwardCopy, backwardCopy);
  // A layer's backward, one product at a time: LoRA's dB = dy^T (A x) reads dy [tokens, out] and
  // dA reads x [tokens, in] across the tokens; an f32 base's dx = dy W reads W [out, in] across
  // its outputs (a packed base is decoded in its kernel). The largest copy among them.
  const layerCopies = projections.map(([out, inFeatures], index) => {
    const targeted = lora !== null && index < lora.targetsPerLayer;
    const dy = targeted && copiedAcross(out, tokens) ? tokenTensor(out) : 0;
    const x = targeted && copiedAcross(inFeatures, tokens) ? tokenTensor(inFeatures) : 0;
    const weight =
      input.baseFormat === 'f32' && copiedAcross(inFeatures, out) ? pooled(out * inFeatures * F32) : 0;
    return Math.max(dy, x, weight);
  });
  const layerBackwardCopy = training ? Math.max(0, ...layerCopies) : 0;
  const kvCache = training ? 0 : 2 * m.numHiddenLayers * input.batchSize * input.sequenceLength * kvDim * F32;
  // What stays between layers: with checkpointing, the layer inputs and the outer tensors (a
  // layer's kept tensors live only while its forward runs, or while it is recomputed).
  const between = input.gradientCheckpointing ? activationsCheckpointed - keptPerLayer : activations;
  const resident = weights + trainable + optimizer;
  let peak: number;
  if (training) {
    // The end of the last layer's forward: everything kept so far plus that layer's transients
    // (with checkpointing, that layer's kept tensors too).
    const forwardEnd = (input.gradientCheckpointing ? activationsCheckpointed : activations) + layerTransient;
    // The classifier: in forward the logits and the table's copy; in backward the logits, their
    // gradient, the operand copies and the gradient of the final hidden states.
    // (dh, then a trained head's weight gradient and its copies.)
    const headGradient = headTrained ? chunked(m.vocabSize * H * F32, H * F32) : 0;
    const classifier =
      between +
      Math.max(
        logitsBytes + forwardCopy,
        logits + inputGradientCopy + tokenTensor(H),
        logits + tokenTensor(H) + headGradient + weightGradientCopy,
      );
    // In a layer's backward: the logits (the loss's output scope holds them until the step ends;
    // their gradient is gone), the gradients reaching the MLP (gate, up, their product) and the
    // layer's output, and the largest operand copy of its products (layerBackwardCopy). With
    // checkpointing the layer is recomputed first, so its whole forward (kept and transient
    // tensors) is live. Parameter gradients accumulate while activations are freed; counting both
    // in full bounds it. Then the embedding's backward: every gradient, the logits and the
    // gradient reaching the table.
    const embeddingBackward = gradients + logitsBytes + tokenTensor(H);
    const inFlight = 3 * tokenTensor(m.intermediateSize) + tokenTensor(H) + layerBackwardCopy;
    const recomputed = input.gradientCheckpointing ? keptPerLayer + layerTransient : 0;
    // A trained embedding's gradient is made after every layer's backward.
    const embeddingGradient = lora?.trainedTables?.embedding ? chunked(m.vocabSize * H * F32, H * F32) : 0;
    const backward = gradients - embeddingGradient + between + recomputed + logitsBytes + inFlight;
    peak = resident + Math.max(forwardEnd, classifier, backward, embeddingBackward);
  } else {
    peak = resident + logits + forwardCopy + kvCache;
  }
  const largestTensor = Math.max(m.vocabSize * tableRowBytes, tokens * m.vocabSize * F32);
  const widestRow = Math.max(m.vocabSize, m.intermediateSize, H) * F32;

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
    layerTransient,
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
