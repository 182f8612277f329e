import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFrozenWeights } from '../loading/frozen-weights.js';
import type { CausalLM } from '../models/llama.js';
import { loadTransformersFixture } from '../testing/fixtures.js';
import { FusedDecoder, fusedDecodeUnsupported } from './fused-decoder.js';
import { generateWithTimings } from './generate.js';
import { KVCache } from './kv-cache.js';

/*
 * Gemma 2 and 3 through the fused decode kernels, against the tiny random Transformers goldens
 * (tools/golden/transformers_families.py): Gemma 2's (1 + w) norms, sqrt(hidden) embedding
 * scale, GeGLU, pre and post norms, attention soft-cap 2 and final soft-cap 3, head_dim 256 and a
 * sliding layer; Gemma 3's q/k norms and local rotary tables on its sliding layers.
 */

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/** After the prompt (through the forward into both caches), each fused step gives the forward's logits. */
async function expectStepLogits(model: CausalLM, prompt: number[], steps: number[]): Promise<void> {
  const reference = KVCache.forModel(device, model.config, 1, 16);
  const fusedCache = KVCache.forModel(device, model.config, 1, 16);
  const decoder = new FusedDecoder(model, fusedCache, [0], 1);
  try {
    for (const cache of [reference, fusedCache]) {
      await device.scope(async () => {
        model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { cache, logits: 'last' });
        await device.sync();
      });
    }
    for (const id of steps) {
      const expected = await device.scope(async () =>
        model.forward(device.fromArray([id], [1, 1], 'i32'), { cache: reference, logits: 'last' }).toArray(),
      );
      decoder.setIds([id]);
      decoder.encodeLogits(fusedCache.length);
      fusedCache.advance(1);
      expectClose(await decoder.logits.toArray(), expected, { atol: 1e-4, rtol: 0, label: `step ${id}` });
    }
  } finally {
    decoder.dispose();
    reference.dispose();
    fusedCache.dispose();
  }
}

describe('fused decoding of Gemma', () => {
  for (const name of ['gemma2', 'gemma3'] as const) {
    it(`${name}: 64 greedy tokens are Transformers' on the fused path; each step's logits are the forward's`, async () => {
      const { model, golden } = await loadTransformersFixture(device, name);
      try {
        expect(fusedDecodeUnsupported(model)).toBeNull();
        const { results, timings } = await generateWithTimings(model, null, [golden.greedy.prompt], {
          maxNewTokens: golden.greedy.tokens.length,
          stopTokens: [],
        });
        expect(timings.fused).toBe(true);
        expect(timings.unfusedReason).toBeNull();
        expect(results[0].tokens).toEqual(golden.greedy.tokens);
        // Past the sliding window (4) on the local layers.
        await expectStepLogits(model, [1, 5, 9, 14], [7, 30, 2, 41, 11, 8]);
      } finally {
        model.dispose();
      }
    });
  }

  it('a Q8_0 Gemma 3 (packed table under the embedding scale) gives the forward logits at each fused step', async () => {
    const { model } = await loadTransformersFixture(device, 'gemma3');
    try {
      await packFrozenWeights(model, 'q8_0');
      expect(model.getSubmodule('model.embed_tokens').packedParameter('weight')?.format).toBe('q8_0');
      expect(fusedDecodeUnsupported(model)).toBeNull();
      await expectStepLogits(model, [1, 5, 9], [7, 30, 2, 41]);
    } finally {
      model.dispose();
    }
  });
});
