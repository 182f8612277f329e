import {
  DECODE_LAYER_HEAD_BUFFERS,
  DECODE_LAYER_MAX_WEIGHTS,
  type DecodeLayerShape,
  type Device,
  decodeLayerLayout,
  decodeLayerUnsupported,
  PackedWeight,
  type Tensor,
  unpackWeight,
} from '@webtune/tensors';
import type { ModelConfig } from '../config/model-config.js';
import type { FusedLowRankTerm } from './fused-decode-support.js';

/*
 * The fused decoder's weights per layer, and the copy of a small f32 layer's weights into one
 * buffer for the one-dispatch layer kernel (decodeLayer).
 */

/** A projection's weight: f32, or frozen f16/bf16 halves (an f16 base) read in place. */
export type Weight = Tensor | PackedWeight;

/** Products of one dispatch (q/k/v, o, gate/up, down): weights, biases and LoRA terms. */
export interface Group {
  weights: Weight[];
  biases: Tensor[] | null;
  terms: (FusedLowRankTerm | null)[];
  /** DoRA's m / ||W + s B A|| [out] of each weight with a DoRA term (null for others). */
  factors: (Tensor | null)[];
  /** Where each adapted weight's A x starts in u, and u's width (0: no adapter in the group). */
  offsets: number[];
  width: number;
  /** [batch, width]: A x of the adapted weights during decode steps. */
  u: Tensor | null;
}

export interface LayerWeights {
  /** Sliding window of this layer's attention (0: every key). */
  window: number;
  inputNorm: Tensor;
  /** The MLP's input norm (post_attention_layernorm; Gemma 2/3: pre_feedforward_layernorm). */
  postNorm: Tensor;
  /** Gemma 2/3: the norms of the attention's and the MLP's outputs before the residual add. */
  residualNorms: { attention: Tensor; mlp: Tensor } | null;
  qkNorm: { q: Tensor; k: Tensor } | null;
  qkv: Group;
  o: Group;
  gateUp: Group;
  down: Group;
}

/** Every layer's weights in one buffer each, for decodeLayer; with the head where it fits. */
export interface PackedLayers {
  shape: DecodeLayerShape;
  buffers: Tensor[];
  head: boolean;
}

/**
 * Copies each small, plain layer (no adapter, no bias past q/k/v) into one f32 buffer in
 * decodeLayer's layout; null where a layer cannot take the one-dispatch path. A packed base's
 * weights (f16/bf16 halves, Q8_0/Q4_0/Q4_K blocks) are decoded into it once: the values the
 * packed kernels would read, exactly, at a cost bounded by DECODE_LAYER_MAX_WEIGHTS f32 per layer.
 */
export function packDecodeLayers(
  device: Device,
  config: ModelConfig,
  layers: readonly LayerWeights[],
  head: Weight,
  keep: (tensor: Tensor) => Tensor,
): PackedLayers | null {
  const shape: DecodeLayerShape = {
    hidden: config.hiddenSize,
    intermediate: config.intermediateSize,
    heads: config.numAttentionHeads,
    kvHeads: config.numKeyValueHeads,
    headDim: config.headDim,
    bias: layers[0].qkv.biases !== null,
    qkNorm: layers[0].qkNorm !== null,
  };
  const groups = layers.flatMap((layer) => [layer.qkv, layer.o, layer.gateUp, layer.down]);
  const plain = groups.every(
    (group) => group.u === null && group.weights.every((w) => w instanceof PackedWeight || w.dtype === 'f32'),
  );
  // Biases past q/k/v (Llama's attention_bias on o_proj, mlp_bias) keep the five dispatches.
  const otherBiases = layers.some((layer) => layer.o.biases || layer.gateUp.biases || layer.down.biases);
  if (!plain || otherBiases || decodeLayerUnsupported(device, shape) !== null) return null;
  const layout = decodeLayerLayout(shape);
  // The kernel binds a layer's buffer whole (a device with a small binding limit keeps five dispatches).
  if (layout.length * 4 > device.maxBindingBytes) return null;
  // A packed weight's decoded copy stays alive with the decoder (a copy is recorded, not yet run).
  const f32 = (weight: Weight): Tensor =>
    weight instanceof PackedWeight ? keep(unpackWeight(weight)) : weight;
  const buffers = layers.map((layer) => {
    const buffer = keep(device.empty([layout.length], 'f32'));
    const target = buffer.binding('FusedDecoder.packLayers');
    const put = (tensor: Tensor, offset: number) => {
      const source = tensor.binding('FusedDecoder.packLayers');
      device.copyBuffer(source, {
        buffer: target.buffer,
        offset: target.offset + offset * 4,
        size: source.size,
      });
    };
    // q, k and v (or Phi-3's stacked qkv_proj) side by side, and their biases.
    put(layer.inputNorm, layout.inputNorm);
    let at = layout.qkv;
    for (const weight of layer.qkv.weights.map(f32)) {
      put(weight, at);
      at += weight.size;
    }
    if (layer.qkv.biases && layout.qkvBias !== null) {
      at = layout.qkvBias;
      for (const bias of layer.qkv.biases) {
        put(bias, at);
        at += bias.size;
      }
    }
    if (layer.qkNorm && layout.qNorm !== null && layout.kNorm !== null) {
      put(layer.qkNorm.q, layout.qNorm);
      put(layer.qkNorm.k, layout.kNorm);
    }
    put(f32(layer.o.weights[0]), layout.o);
    put(layer.postNorm, layout.postNorm);
    // Gate then up: Phi-3's stacked gate_up_proj fills both (up starts right after gate).
    put(f32(layer.gateUp.weights[0]), layout.gate);
    if (layer.gateUp.weights.length > 1) put(f32(layer.gateUp.weights[1]), layout.up);
    put(f32(layer.down.weights[0]), layout.down);
    return buffer;
  });
  // A small f32 head goes into the last layer's dispatch too (with the greedy argmax).
  const withHead =
    device.gpu.limits.maxStorageBuffersPerShaderStage >= DECODE_LAYER_HEAD_BUFFERS &&
    !(head instanceof PackedWeight) &&
    head.dtype === 'f32' &&
    head.size <= DECODE_LAYER_MAX_WEIGHTS;
  return { shape, buffers, head: withHead };
}

/**
 * Why the fused prefill with decode's products cannot run a model's prompt, or null: its prompt
 * attention kernel has no sliding window and none of Gemma's parts, so such prompts take the tiled
 * prefill (generate falls back to it) or the model's forward (the steps after it stay fused).
 */
export function prefillUnsupportedOf(config: ModelConfig, layers: readonly LayerWeights[]): string | null {
  if (layers.some((layer) => layer.window > 0)) return 'sliding-window attention';
  return config.normAddsOne || config.postNorms || config.attnLogitSoftcapping != null ? 'Gemma' : null;
}

/**
 * Why the tiled prefill cannot run a model the fused decoder takes, or null. Today nothing blocks
 * it: prefillProduct reads f32, f16, bf16 and ggml blocks (Q8_0, Q4_0, Q4_K), with LoRA, DoRA's
 * factors and Phi-3's stacked gate_up_proj, and the prompt's attention (the attention op) takes
 * Gemma 2/3's soft-cap and sliding windows. The check stays for parts a later model may add.
 */
export function tiledPrefillUnsupportedOf(
  _config: ModelConfig,
  _layers: readonly LayerWeights[],
): string | null {
  return null;
}
