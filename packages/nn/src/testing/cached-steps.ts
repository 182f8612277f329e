import type { Device } from '@webtune/tensors';
import { KVCache } from '../generation/kv-cache.js';
import type { CausalLM } from '../models/llama.js';

/**
 * Runs `inputIds` ([batch][seq]) through `model` with a KV cache: a prefill of `prefill` tokens,
 * then one token per step. Returns each call's logits ([batch, tokens of the call, vocab]) and the
 * cache's length at the end.
 */
export async function cachedStepLogits(
  device: Device,
  model: CausalLM,
  inputIds: number[][],
  prefill: number,
): Promise<{ steps: Float32Array[]; cacheLength: number }> {
  const batch = inputIds.length;
  const seq = inputIds[0].length;
  const cache = KVCache.forModel(device, model.config, batch, seq);
  const steps: Float32Array[] = [];
  try {
    const run = (start: number, end: number) =>
      device.scope(async () => {
        const ids = device.fromArray(
          inputIds.flatMap((row) => row.slice(start, end)),
          [batch, end - start],
          'i32',
        );
        return (await model.forward(ids, { cache }).toArray()) as Float32Array;
      });
    steps.push(await run(0, prefill));
    for (let t = prefill; t < seq; t++) steps.push(await run(t, t + 1));
    return { steps, cacheLength: cache.length };
  } finally {
    cache.dispose();
  }
}
