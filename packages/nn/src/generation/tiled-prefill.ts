import {
  type Device,
  type PrefillAppendOptions,
  prefillAppend,
  promptAttention,
  type Tensor,
} from '@webtune/tensors';
import type { CausalLM } from '../models/llama.js';
import type { RMSNorm } from '../module/layers.js';
import type { KVCache } from './kv-cache.js';

/**
 * The tiled prefill's attention of one layer (FusedDecoder.prefill with `tiled`): prefillAppend
 * rotates the keys into the cache and the queries into `queries`, then promptAttention (the
 * forward's kernel, or on CPU rasterisers at small head dims a prompt kernel of its own) attends
 * over the cache: one row over the filled prefix, several over the whole
 * cache with their left padding masked (`mask`); Gemma's sliding window and soft-cap where given.
 * Returns the output as rows [rows, heads headDim].
 */
export function tiledPrefillAttention(
  device: Device,
  cache: KVCache,
  layer: number,
  inputs: Omit<PrefillAppendOptions, 'queries' | 'keys' | 'values'>,
  queries: Tensor,
  scale: number,
  mask: Tensor | undefined,
  /** Gemma: the layer's sliding window (0: every key) and the attention logit soft-cap (0: none). */
  gemma: { window: number; softcap: number } = { window: 0, softcap: 0 },
): Tensor {
  const { heads, kvHeads, start, steps } = inputs;
  const batch = cache.batch;
  const headDim = cache.headDim;
  const keys = cache.keys[layer];
  const values = cache.values[layer];
  prefillAppend(device, { ...inputs, keys, values, queries });
  const seen = batch > 1 ? cache.capacity : start + steps;
  const cached = (tensor: Tensor) => (batch > 1 ? tensor : tensor.prefixView([1, seen, kvHeads, headDim]));
  const output = promptAttention(
    queries.reshape([batch, steps, heads, headDim]),
    cached(keys),
    cached(values),
    {
      causal: true,
      scale,
      queryOffset: start,
      ...(mask ? { paddingMask: mask } : {}),
      ...(gemma.window > 0 ? { window: gemma.window } : {}),
      ...(gemma.softcap > 0 ? { softcap: gemma.softcap } : {}),
    },
  );
  return output.reshape([batch * steps, heads * headDim]);
}

/** [batch, capacity] u32: 1 where a row's key is a real token (after its left padding). */
export function leftPaddingMask(device: Device, padding: readonly number[], capacity: number): Tensor {
  const mask = new Uint32Array(padding.length * capacity);
  padding.forEach((pad, b) => {
    mask.fill(1, b * capacity + pad, (b + 1) * capacity);
  });
  return device.fromArray(mask, [padding.length, capacity], 'u32');
}

/**
 * [batch, vocab] f32: the model's own final norm and head modules on the rows' last hidden states
 * (its small-rows matmul read the stories15M shape's 32000 x 288 head in 8 ms against 32 ms for
 * decode's matvec in one profile on lavapipe).
 */
export function modelHead(model: CausalLM, hidden: Tensor): Tensor {
  const norm = model.model.child('norm') as RMSNorm;
  return model.logitsFromHidden(norm.forward(hidden)).reshape([hidden.shape[0], model.config.vocabSize]);
}
