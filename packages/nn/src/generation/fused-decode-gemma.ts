import type { Device, Tensor } from '@webtune/tensors';
import type { ModelConfig } from '../config/model-config.js';
import * as F from '../functional.js';

/*
 * What the fused decoder does differently for Gemma (2 and 3, the families the repo loads):
 * (1 + w) norm weights, the sqrt(hidden) embedding scale, GeGLU (GELU's tanh form) in the MLP,
 * post-attention and post-feed-forward norms added into the residual stream, attention and final
 * logit soft-capping, and Gemma 3's local rotary tables on its sliding layers. Llama-family
 * models get the neutral settings.
 */
export interface DecodeFeatures {
  /** Multiplies each embedding (Gemma: sqrt(hidden), as an f32); 1 otherwise. */
  embedScale: number;
  /** The gated MLP's activation. */
  activation: 'silu' | 'gelu_tanh';
  /** Attention logit soft-cap (Gemma 2); 0: none. */
  attentionSoftcap: number;
  /** Final logit soft-cap (Gemma 2); null: none. */
  finalSoftcap: number | null;
  /** Each sublayer's output goes through its own norm before joining the residual (Gemma 2/3). */
  postNorms: boolean;
}

export function decodeFeaturesOf(config: ModelConfig): DecodeFeatures {
  return {
    embedScale: config.embeddingMultiplier ?? 1,
    activation: config.hiddenAct === 'gelu_pytorch_tanh' ? 'gelu_tanh' : 'silu',
    attentionSoftcap: config.attnLogitSoftcapping ?? 0,
    finalSoftcap: config.finalLogitSoftcapping ?? null,
    postNorms: config.postNorms,
  };
}

/**
 * A norm's weight as the kernels take it: Gemma's (1 + w), computed once into a tensor that
 * `keep` owns (the weights are frozen while decoding), or the weight itself.
 */
export function normWeightOf(
  device: Device,
  config: ModelConfig,
  weight: Tensor,
  keep: (tensor: Tensor) => Tensor,
): Tensor {
  if (!config.normAddsOne) return weight;
  return keep(device.scope(() => F.add(weight, 1).keep()));
}
