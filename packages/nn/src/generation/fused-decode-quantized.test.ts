import { createDevice, type Device } from '@webtune/tensors';
import { expectClose, fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFrozenWeights } from '../loading/frozen-weights.js';
import type { CausalLM } from '../models/llama.js';
import { loadModelDirectory } from '../node.js';
import { FusedDecoder, fusedDecodeUnsupported } from './fused-decoder.js';
import { generateWithTimings } from './generate.js';
import { KVCache } from './kv-cache.js';

/*
 * Fused decoding of a ggml-quantized base (QLoRA's quantization_bit 8 and 4, quantized at load):
 * stories260K with Q8_0 and Q4_0 projections (its down_proj, 172 wide, is not whole blocks and
 * stays f16) and a Q8_0 token table, tied to the head. Each fused step gives the logits of the
 * model's own forward over the same packed weights, and greedy decoding gives the unfused tokens.
 */

const HF = 'models/stories260K-hf';
let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe.skipIf(!requireFixtures(HF))('fused decoding of a quantized stories260K', () => {
  for (const format of ['q8_0', 'q4_0'] as const) {
    it(`${format}: each step's logits are the forward's (within 1e-4); greedy tokens are the unfused path's, in fewer dispatches`, async () => {
      const { model } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
      try {
        await packFrozenWeights(model, format);
        expect(model.getSubmodule('model.layers.0.self_attn.q_proj').packedParameter('weight')?.format).toBe(
          format,
        );
        expect(model.getSubmodule('model.embed_tokens').packedParameter('weight')?.format).toBe('q8_0');
        expect(fusedDecodeUnsupported(model)).toBeNull();
        const prompt = [1, 403, 407, 261];
        // Both layer paths: one dispatch per layer (its weights decoded into f32 once), five.
        for (const layerKernel of [true, false]) {
          const reference = KVCache.forModel(device, model.config, 1, 16);
          const cache = KVCache.forModel(device, model.config, 1, 16);
          const decoder = new FusedDecoder(model, cache, [0], 1, layerKernel);
          try {
            // The prompt through the fused matvecs (fused-prefill-quantized.test.ts: the tiled prefill).
            expect(decoder.tiledPrefillUnsupported).toBeNull();
            const logits = (await decoder.prefill(
              Int32Array.from(prompt),
              prompt.length,
              0,
              false,
            )) as Float32Array;
            const expected = await device.scope(async () =>
              model
                .forward(device.fromArray(prompt, [1, prompt.length], 'i32'), {
                  cache: reference,
                  logits: 'last',
                })
                .toArray(),
            );
            expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: `${format} prefill ${layerKernel}` });
            cache.advance(prompt.length);
            for (const id of [300, 5, 97]) {
              const stepExpected = await device.scope(async () =>
                model
                  .forward(device.fromArray([id], [1, 1], 'i32'), { cache: reference, logits: 'last' })
                  .toArray(),
              );
              decoder.setIds([id]);
              decoder.encodeLogits(cache.length);
              cache.advance(1);
              expectClose(await decoder.logits.toArray(), stepExpected, {
                atol: 1e-4,
                rtol: 0,
                label: `${format} step ${id}, layer kernel ${layerKernel}`,
              });
            }
          } finally {
            decoder.dispose();
            cache.dispose();
            reference.dispose();
          }
        }
        const options = { maxNewTokens: 24, stopTokens: [] };
        const prompts = [prompt, [1, 70, 80]];
        const plain = await generateWithTimings(model, null, prompts, { ...options, fusedDecode: false });
        const fused = await generateWithTimings(model, null, prompts, options);
        expect(plain.timings.unfusedReason).toBe('fusedDecode: false');
        expect(fused.timings.fused).toBe(true);
        expect(fused.timings.unfusedReason).toBeNull();
        expect(fused.results.map((r) => r.tokens)).toEqual(plain.results.map((r) => r.tokens));
        const perStep = (t: typeof fused.timings) => t.decodeDispatches / t.decodeSteps;
        // The gather of the packed table, a dispatch per layer (5), the head and the argmax.
        expect(perStep(fused.timings)).toBe(8);
        expect(perStep(plain.timings)).toBeGreaterThan(50);
      } finally {
        model.dispose();
      }
    });
  }
});
