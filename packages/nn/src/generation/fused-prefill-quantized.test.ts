import { createDevice, type Device } from '@webtune/tensors';
import { expectClose, fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFrozenWeights } from '../loading/frozen-weights.js';
import type { CausalLM } from '../models/llama.js';
import { loadModelDirectory } from '../node.js';
import { FusedDecoder } from './fused-decoder.js';
import { generateWithTimings } from './generate.js';
import { KVCache } from './kv-cache.js';

/*
 * The tiled prefill over a ggml-quantized base (QLoRA's quantization_bit 8 and 4, quantized at
 * load): stories260K with Q8_0 and Q4_0 projections (its down_proj, 172 wide, is not whole blocks
 * and stays f16: one layer mixes both product kernels) and a Q8_0 token table tied to the head
 * (decode's matvec reads it for the last rows). Each prompt's last logits are the forward's over
 * the same packed weights, and generate's tokens are the forward-prefilled path's.
 */

const HF = 'models/stories260K-hf';
let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/** A prompt of `length` ids (BOS, then a spread of the vocabulary). */
const promptOf = (length: number, vocab: number, salt = 0) => [
  1,
  ...Array.from({ length: length - 1 }, (_, i) => 3 + ((i * 7919 + salt * 131) % (vocab - 3))),
];

describe.skipIf(!requireFixtures(HF))('tiled prefill of a quantized stories260K', () => {
  for (const format of ['q8_0', 'q4_0'] as const) {
    it(`${format}: a 45-token prompt gives the forward's last logits and the next step's (1e-4); generate's tokens are the forward-prefilled ones`, async () => {
      const { model } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
      try {
        await packFrozenWeights(model, format);
        expect(model.getSubmodule('model.layers.0.mlp.gate_proj').packedParameter('weight')?.format).toBe(
          format,
        );
        expect(model.getSubmodule('model.embed_tokens').packedParameter('weight')?.format).toBe('q8_0');
        const vocab = model.config.vocabSize;
        const prompt = promptOf(45, vocab, format.length);
        const cache = KVCache.forModel(device, model.config, 1, prompt.length + 1);
        const decoder = new FusedDecoder(model, cache, [0], 1);
        try {
          expect(decoder.tiledPrefillUnsupported).toBeNull();
          const logits = (await decoder.prefill(
            Int32Array.from(prompt),
            prompt.length,
            0,
            false,
            true,
          )) as Float32Array;
          const expected = await device.scope(async () =>
            model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { logits: 'last' }).toArray(),
          );
          expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: `${format} tiled prefill` });
          // The cache it filled: the next fused step gives the forward's logits over prompt + id.
          cache.advance(prompt.length);
          decoder.setIds([300]);
          decoder.encodeLogits(cache.length);
          const next = [...prompt, 300];
          const stepExpected = await device.scope(async () =>
            model.forward(device.fromArray(next, [1, next.length], 'i32'), { logits: 'last' }).toArray(),
          );
          expectClose(await decoder.logits.toArray(), stepExpected, {
            atol: 1e-4,
            rtol: 0,
            label: `${format} step after the tiled prefill`,
          });
        } finally {
          decoder.dispose();
          cache.dispose();
        }
        // Ragged prompts (left padding, two rows of 41): the tiled prefill against the forward's.
        const prompts = [promptOf(41, vocab, 2), promptOf(30, vocab, 3)];
        const options = { maxNewTokens: 10, stopTokens: [] };
        const tiled = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: true });
        const forward = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: false });
        expect(tiled.timings.unfusedReason).toBeNull();
        expect(tiled.timings.prefillPath).toBe('tiled');
        expect(forward.timings.prefillPath).toBe('forward');
        expect(tiled.results.map((r) => r.tokens)).toEqual(forward.results.map((r) => r.tokens));
      } finally {
        model.dispose();
      }
    });
  }

  it('q8_0: a 128-token prompt takes 6 dispatches per layer + 3 (the forward more than twice as many)', async () => {
    const { model } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
    try {
      await packFrozenWeights(model, 'q8_0');
      const prompt = promptOf(128, model.config.vocabSize, 9);
      const count = async (tiledPrefill: boolean) => {
        await generateWithTimings(model, null, [prompt], { maxNewTokens: 1, stopTokens: [], tiledPrefill });
        await device.sync();
        const before = device.stats.dispatches;
        await generateWithTimings(model, null, [prompt], { maxNewTokens: 1, stopTokens: [], tiledPrefill });
        return device.stats.dispatches - before;
      };
      const [tiled, forward] = [await count(true), await count(false)];
      // Per layer q/k/v, append, attention, o, gate/up, down; the packed table's gather, the small
      // tied Q8_0 head with the final norm, the argmax (measured: 33 against 79).
      expect(tiled).toBe(6 * model.config.numHiddenLayers + 3);
      expect(forward).toBeGreaterThan(2 * tiled);
    } finally {
      model.dispose();
    }
  });
});
