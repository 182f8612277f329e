import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig } from '../config/model-config.js';
import { packFrozenWeights } from '../loading/frozen-weights.js';
import { CausalLM } from '../models/llama.js';
import { initializeModel } from '../module/initialize.js';
import { loadTransformersFixture } from '../testing/fixtures.js';
import { FusedDecoder } from './fused-decoder.js';
import { generateWithTimings } from './generate.js';
import { KVCache } from './kv-cache.js';

/*
 * Families with their own parts through the tiled prefill. Gemma 2 and 3, against the tiny random
 * Transformers goldens (tools/golden/transformers_families.py) and the model's forward: (1 + w)
 * norms, the embedding scale, GeGLU, post norms, Gemma 2's attention soft-cap (2) and final
 * soft-cap (3), Gemma 3's q/k norms and local rotary tables, and the sliding window (4) of the
 * local layers, which the prompts here are longer than. Phi-3: stacked qkv_proj and gate_up_proj.
 */

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

/** The tiled prefill's last logits, and the next fused step's on the cache it filled, against the forward's (1e-4). */
async function expectForwardLogits(model: CausalLM, prompt: number[], label: string): Promise<void> {
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
    expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: `${label} tiled prefill` });
    cache.advance(prompt.length);
    decoder.setIds([7]);
    decoder.encodeLogits(cache.length);
    const next = [...prompt, 7];
    const stepExpected = await device.scope(async () =>
      model.forward(device.fromArray(next, [1, next.length], 'i32'), { logits: 'last' }).toArray(),
    );
    expectClose(await decoder.logits.toArray(), stepExpected, {
      atol: 1e-4,
      rtol: 0,
      label: `${label} step`,
    });
  } finally {
    decoder.dispose();
    cache.dispose();
  }
}

describe('tiled prefill of Gemma', () => {
  for (const name of ['gemma2', 'gemma3'] as const) {
    it(`${name}: greedy tokens are Transformers' with the prompt through the tiled prefill; a 29-token prompt and ragged rows match the forward`, async () => {
      const { model, golden } = await loadTransformersFixture(device, name);
      try {
        const { results, timings } = await generateWithTimings(model, null, [golden.greedy.prompt], {
          maxNewTokens: golden.greedy.tokens.length,
          stopTokens: [],
          // Every prompt over one token takes the tiled prefill.
          fusedPrefillTokens: 1,
          tiledPrefill: true,
        });
        expect(timings.unfusedReason).toBeNull();
        expect(timings.prefillPath).toBe('tiled');
        expect(results[0].tokens).toEqual(golden.greedy.tokens);
        const vocab = model.config.vocabSize;
        await expectForwardLogits(model, promptOf(29, vocab, 1), name);
        // Left-padded rows (the window counts cache slots: padding shifts keys and queries alike).
        const prompts = [promptOf(17, vocab, 2), promptOf(9, vocab, 3)];
        const options = { maxNewTokens: 6, stopTokens: [], fusedPrefillTokens: 1 };
        const tiled = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: true });
        const forward = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: false });
        expect(tiled.timings.prefillPath).toBe('tiled');
        expect(forward.timings.prefillPath).toBe('forward');
        expect(tiled.results.map((r) => r.tokens)).toEqual(forward.results.map((r) => r.tokens));
      } finally {
        model.dispose();
      }
    });
  }

  it('a Q8_0 Gemma 3 (quantized products, packed table under the embedding scale) gives the forward logits', async () => {
    const { model } = await loadTransformersFixture(device, 'gemma3');
    try {
      await packFrozenWeights(model, 'q8_0');
      expect(model.getSubmodule('model.embed_tokens').packedParameter('weight')?.format).toBe('q8_0');
      await expectForwardLogits(model, promptOf(21, model.config.vocabSize, 4), 'q8_0 gemma3');
    } finally {
      model.dispose();
    }
  });

  it("with the GPU classes' product tiles (4 x 4, 64 lanes, no subgroup loads): a short Gemma 2 prompt takes the tiled prefill and gives Transformers' first tokens", async () => {
    const gpuLike = await createDevice({
      tuning: {
        matmulTileRows: 4,
        matmulTileCols: 4,
        matmulWorkgroup: 64,
        matmulSubgroups: false,
        prefillTileRows: [4],
        prefillStoreCols: 4,
        prefillResidualCols: 4,
        prefillGatedCols: 2,
        prefillWorkgroup: 64,
        prefillSubgroups: false,
        prefillRowTilesInner: false,
      },
    });
    try {
      const { model, golden } = await loadTransformersFixture(gpuLike, 'gemma2');
      try {
        const { results, timings } = await generateWithTimings(model, null, [golden.greedy.prompt], {
          maxNewTokens: 4,
          stopTokens: [],
        });
        expect(timings.prefillPath).toBe('tiled');
        expect(results[0].tokens).toEqual(golden.greedy.tokens.slice(0, 4));
      } finally {
        model.dispose();
      }
    } finally {
      gpuLike.destroy();
    }
  });

  it('gemma2: a 128-token prompt takes 8 dispatches per layer (the forward more than twice as many in all)', async () => {
    const { model } = await loadTransformersFixture(device, 'gemma2');
    try {
      const prompt = promptOf(128, model.config.vocabSize, 8);
      const count = async (tiledPrefill: boolean) => {
        await generateWithTimings(model, null, [prompt], { maxNewTokens: 1, stopTokens: [], tiledPrefill });
        await device.sync();
        const before = device.stats.dispatches;
        await generateWithTimings(model, null, [prompt], { maxNewTokens: 1, stopTokens: [], tiledPrefill });
        return device.stats.dispatches - before;
      };
      const [tiled, forward] = [await count(true), await count(false)];
      const layers = model.config.numHiddenLayers;
      // Per layer q/k/v, append, attention, o, its post norm added, gate/up (GeGLU), down, its post
      // norm added; the decoder's (1 + w) norm weights (4 per layer and the final one, made once per
      // call); the scaled embedding, the small head with the final norm, its soft-cap, the argmax.
      expect(tiled).toBe(8 * layers + (4 * layers + 1) + 4);
      expect(forward).toBeGreaterThan(2 * tiled);
    } finally {
      model.dispose();
    }
  });

  it('a short Gemma prompt, which decode-product prefill cannot run, takes the tiled prefill', async () => {
    const { model } = await loadTransformersFixture(device, 'gemma2');
    try {
      const { timings } = await generateWithTimings(model, null, [[1, 5, 9]], {
        maxNewTokens: 2,
        stopTokens: [],
      });
      expect(timings.prefillPath).toBe('tiled');
    } finally {
      model.dispose();
    }
  });
});

describe('tiled prefill of Phi-3', () => {
  for (const slidingWindow of [6, null]) {
    it(`stacked qkv_proj and gate_up_proj, sliding window ${slidingWindow}: the forward's logits, and generate's tokens`, async () => {
      const config = createModelConfig({
        architecture: 'Phi3ForCausalLM',
        hiddenSize: 32,
        intermediateSize: 48,
        numHiddenLayers: 2,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        vocabSize: 64,
        slidingWindow,
      });
      const model = initializeModel(new CausalLM(device, config), { seed: 5, std: 0.2 });
      try {
        expect(config.fusedProjections).toBe(true);
        await expectForwardLogits(model, promptOf(27, config.vocabSize, 5), `phi-3 window ${slidingWindow}`);
        const prompts = [promptOf(19, config.vocabSize, 6), promptOf(11, config.vocabSize, 7)];
        const options = { maxNewTokens: 8, stopTokens: [], fusedPrefillTokens: 1 };
        const tiled = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: true });
        const forward = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: false });
        expect(tiled.timings.prefillPath).toBe('tiled');
        expect(tiled.results.map((r) => r.tokens)).toEqual(forward.results.map((r) => r.tokens));
      } finally {
        model.dispose();
      }
    });
  }
});
