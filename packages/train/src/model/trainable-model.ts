import type { CausalLM, LinearLike, ModelFileSink } from '@webtune/nn';
import { type PeftModel, saveAdapter } from '@webtune/peft';
import { autograd, checkpoint, type Device, type Tensor, withHalfSavedTensors } from '@webtune/tensors';

/** Options of one training forward. */
export interface TrainingForwardOptions {
  /** Recompute each decoder layer in backward instead of keeping its activations. */
  gradientCheckpointing?: boolean;
  /**
   * Storage of the layer inputs gradient checkpointing keeps (the residual stream between
   * layers): 'f16' halves them (the adapter must have shader-f16). Every layer computes in f32:
   * its input is cast up, its output rounded to f16 once (see docs/architecture/precision.md).
   */
  checkpointDtype?: 'f32' | 'f16';
  /**
   * Storage of the activations each layer keeps for backward when checkpointing is off: 'f16'
   * stores those HALF_SAVED_POLICY allows (the adapter must have shader-f16); compute stays f32
   * (see docs/architecture/precision.md). Ignored under checkpointing (checkpointDtype applies).
   */
  activationDtype?: 'f32' | 'f16';
  /** Position of each token per row (packed rows restart at 0 per example); default 0..seq-1. */
  positions?: readonly (readonly number[])[];
  /**
   * i32 [rows, seq] segment ids of packed examples (neat_packing; 0 = padding): attention stays
   * inside each example.
   */
  segmentIds?: Tensor;
}

/**
 * What the trainer needs from a model: hidden states and the classifier (kept apart so the loss
 * can fuse and chunk the classifier), the parameters that train, and optional hooks for
 * dropout, DPO's reference pass and checkpoint files.
 */
export interface TrainableModel {
  readonly device: Device;
  readonly hiddenSize: number;
  /** Columns of the classifier's logits (absent: the loss chunks them only when asked to). */
  readonly vocabSize?: number;
  /** Hidden states after the final norm, [batch, seq, hidden], for i32 ids [batch, seq]. */
  hiddenStates(ids: Tensor, options?: TrainingForwardOptions): Tensor;
  /** The classifier: hidden [rows, hidden] -> logits [rows, vocab]. */
  head(hidden: Tensor): Tensor;
  /**
   * Whether no parameter of the classifier trains now (LoRA, freeze tuning without the head):
   * a chunked loss then differentiates each chunk in its forward (tokenCrossEntropy's `frozen`).
   */
  headFrozen?(): boolean;
  /** The parameters the optimizer updates, by stable names (checkpoints use them). */
  trainableParameters(): [string, Tensor][];
  /** Dropout on (training) or off (evaluation), and the seed its masks derive from. */
  setTraining?(on: boolean, seed: number): void;
  /** Runs `fn` with the adapters off (the DPO reference); absent for models without adapters. */
  withAdaptersDisabled?<R>(fn: () => R): R;
  /** Writes files that make a checkpoint usable on its own (PEFT's adapter files). */
  exportFiles?(sink: ModelFileSink, options?: ExportOptions): Promise<string[]>;
}

/** What the trainer tells `exportFiles` about the run. */
export interface ExportOptions {
  /**
   * The base model of the run (LLaMA-Factory's model_name_or_path), written as the adapter's
   * base_model_name_or_path; absent: the adapter config's own value is kept.
   */
  baseModelNameOrPath?: string;
}

/**
 * A CausalLM for training: every parameter trains (full fine-tuning), or only those named in
 * `trainable` (freeze tuning, see @webtune/peft's freezeTrainableNames).
 */
export function trainableCausalLM(
  model: CausalLM,
  options: { trainable?: readonly string[] } = {},
): TrainableModel {
  const all = [...model.namedParameters()];
  const packed = [...model.namedPackedParameters()];
  if (packed.length > 0 && !options.trainable) {
    throw new Error(
      `full fine-tuning cannot train a quantized or half-precision frozen base (${packed.length} weights are held ${packed[0][1].format}, e.g. ${packed[0][0]}): those weights take no gradient. Use finetuning_type: lora (QLoRA), or load the base in f32 (drop quantization_bit / fp16 / bf16)`,
    );
  }
  const names = options.trainable ? new Set(options.trainable) : null;
  if (names) {
    const known = new Set(all.map(([name]) => name));
    const unknown = [...names].filter((name) => !known.has(name));
    if (unknown.length > 0) throw new Error(`trainableCausalLM: no parameters named ${unknown.join(', ')}`);
  }
  const trainable = names ? all.filter(([name]) => names.has(name)) : all;
  return {
    device: model.device,
    hiddenSize: model.config.hiddenSize,
    vocabSize: model.config.vocabSize,
    hiddenStates: (ids, forwardOptions) => decoderHiddenStates(model, ids, forwardOptions),
    head: (hidden) => model.logitsFromHidden(hidden),
    headFrozen: () => headFrozen(model, trainable),
    trainableParameters: () => trainable,
  };
}

/**
 * A PEFT model for training: its adapter's parameters train, the base stays frozen. With
 * `convertPissaToLora` the exported adapter is PiSSA's converted to a plain LoRA of rank 2r for
 * the untouched base (LLaMA-Factory's pissa_convert).
 */
export function trainablePeftModel(
  peft: PeftModel,
  options: { convertPissaToLora?: boolean } = {},
): TrainableModel {
  const model = peft.model;
  return {
    device: model.device,
    hiddenSize: model.config.hiddenSize,
    vocabSize: model.config.vocabSize,
    hiddenStates: (ids, forwardOptions) => decoderHiddenStates(model, ids, forwardOptions),
    head: (hidden) => model.logitsFromHidden(hidden),
    headFrozen: () => headFrozen(model, peft.trainableParameters()),
    trainableParameters: () => peft.trainableParameters(),
    setTraining: (on, seed) => {
      peft.train(on);
      peft.runtime.seed = seed;
    },
    withAdaptersDisabled: (fn) => peft.withAdaptersDisabled(fn),
    exportFiles: (sink, exportOptions = {}) =>
      saveAdapter(peft, sink, {
        baseModelNameOrPath: exportOptions.baseModelNameOrPath,
        convertPissaToLora: options.convertPissaToLora,
      }),
  };
}

/** Whether none of the trained tensors belongs to the classifier (lm_head, or the table tied to it). */
function headFrozen(model: CausalLM, trainable: readonly [string, Tensor][]): boolean {
  const head = new Set<Tensor>();
  for (const [, tensor] of model.child('lm_head').namedParameters()) head.add(tensor);
  return !trainable.some(([, tensor]) => head.has(tensor));
}

/**
 * CausalLM.hiddenStates for training: the same embedding, decoder layers and final norm, each
 * layer inside its own scope, so its intermediates that backward does not need are freed as soon
 * as the layer is done (the tape holds its own handles to the rest); with gradient checkpointing
 * a layer keeps only its input and runs again in backward. Right-padded batches need no padding
 * mask: a causal model never lets a real token see the padding after it.
 */
function decoderHiddenStates(model: CausalLM, ids: Tensor, options: TrainingForwardOptions = {}): Tensor {
  const { device } = model;
  const seq = ids.shape[1];
  const context = model.layerContext(
    options.positions ?? Array.from({ length: seq }, (_, i) => i),
    null,
    undefined,
    options.segmentIds,
  );
  const decoder = model.model;
  const half = options.gradientCheckpointing === true && options.checkpointDtype === 'f16';
  // Under f16 storage the casts happen inside scopes, so neither the embedding's f32 output nor
  // the last layer's f16 output outlives its cast (a cast keeps nothing for backward): between
  // layers only the f16 inputs stay, as the memory plan counts.
  let h = half ? device.scope(() => autograd.cast(model.embed(ids), 'f16')) : model.embed(ids);
  const layers = [...decoder.layers];
  // f16 kept activations: each layer's ops save f16 copies of what the rule allows; the f32
  // originals die with the layer's scope.
  const halfKept = !options.gradientCheckpointing && options.activationDtype === 'f16';
  const plain = (layer: (typeof layers)[number], input: Tensor) =>
    halfKept ? withHalfSavedTensors(() => layer.forward(input, context)) : layer.forward(input, context);
  layers.forEach((layer, index) => {
    const input = h;
    h = device.scope(() => {
      if (!options.gradientCheckpointing) return plain(layer, input);
      const output = checkpoint(
        (x) =>
          half
            ? autograd.cast(layer.forward(autograd.cast(x, 'f32'), context), 'f16')
            : layer.forward(x, context),
        [input],
      );
      return half && index === layers.length - 1 ? autograd.cast(output, 'f32') : output;
    });
  });
  if (half && layers.length === 0) h = autograd.cast(h, 'f32');
  return decoder.child<LinearLike>('norm').forward(h);
}
