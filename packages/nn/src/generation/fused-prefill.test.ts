import { createDevice, type Device } from '@webtune/tensors';
import { expectClose, fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig } from '../config/model-config.js';
import { packFrozenWeights } from '../loading/frozen-weights.js';
import { CausalLM } from '../models/llama.js';
import { initializeModel } from '../module/initialize.js';
import { loadModelDirectory } from '../node.js';
import { loadTransformersFixture } from '../testing/fixtures.js';
import { FusedDecoder } from './fused-decoder.js';
import { generateWithTimings } from './generate.js';
import { KVCache } from './kv-cache.js';

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

/**
 * The tiled prefill (prefill products over the prompt's rows, keys rotated into the cache, the
 * attention op over it, one submit) against the model's own forward: the last position's logits,
 * the next step's logits on the cache it filled, and generate's tokens.
 */
describe.skipIf(!requireFixtures(HF))('tiled prefill on stories260K', () => {
  let model: CausalLM;
  beforeAll(async () => {
    ({ model } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM });
  });
  afterAll(() => model?.dispose());

  /** Tiled prefill logits and the following fused step's logits against the forward (1e-4). */
  async function expectForwardLogits(on: CausalLM, prompt: number[], label: string): Promise<void> {
    const cache = KVCache.forModel(device, on.config, 1, prompt.length + 1);
    const decoder = new FusedDecoder(on, cache, [0], 1);
    try {
      const logits = (await decoder.prefill(
        Int32Array.from(prompt),
        prompt.length,
        0,
        false,
        true,
      )) as Float32Array;
      const expected = await device.scope(async () =>
        on.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { logits: 'last' }).toArray(),
      );
      expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: `${label} prefill` });
      cache.advance(prompt.length);
      decoder.setIds([300]);
      decoder.encodeLogits(cache.length);
      const next = [...prompt, 300];
      const stepExpected = await device.scope(async () =>
        on.forward(device.fromArray(next, [1, next.length], 'i32'), { logits: 'last' }).toArray(),
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

  it("gives the forward's last logits for a 45-token prompt, and a cache the next step reads as the forward's (1e-4)", async () => {
    await expectForwardLogits(model, promptOf(45, model.config.vocabSize), 'f32');
  });

  it('does the same on an f16 base (packed halves read in place)', async () => {
    const { model: half } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
    try {
      await packFrozenWeights(half, 'f16');
      await expectForwardLogits(half, promptOf(40, half.config.vocabSize, 1), 'f16');
    } finally {
      half.dispose();
    }
  });

  it('generate: long ragged prompts (left padding, several rows) give the tokens of the unfused path, greedy and sampled', async () => {
    const vocab = model.config.vocabSize;
    const prompts = [promptOf(41, vocab, 2), promptOf(7, vocab, 3), promptOf(36, vocab, 4)];
    for (const sampling of [{}, { temperature: 0.9, topK: 40, seed: 5 }]) {
      const options = { maxNewTokens: 12, stopTokens: [], ...sampling };
      const plain = await generateWithTimings(model, null, prompts, { ...options, fusedDecode: false });
      const tiled = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: true });
      const forward = await generateWithTimings(model, null, prompts, { ...options, tiledPrefill: false });
      expect(tiled.timings.fused).toBe(true);
      for (const other of [tiled, forward])
        expect(other.results.map((r) => r.tokens)).toEqual(plain.results.map((r) => r.tokens));
    }
  });

  it('takes one submit and at most 6 dispatches per layer (+ 3) for a 128-token prompt (the forward takes twice as many)', async () => {
    const prompt = promptOf(128, model.config.vocabSize, 6);
    const count = async (tiledPrefill: boolean) => {
      await device.sync();
      const before = { ...device.stats };
      await generateWithTimings(model, null, [prompt], { maxNewTokens: 1, stopTokens: [], tiledPrefill });
      return {
        dispatches: device.stats.dispatches - before.dispatches,
        submits: device.stats.submits - before.submits,
      };
    };
    const tiled = await count(true);
    const forward = await count(false);
    const layers = model.config.numHiddenLayers;
    // Per layer q/k/v, append, attention, o, gate/up, down; then embed, the final norm with the
    // (small) head, and the argmax.
    expect(tiled.dispatches).toBeLessThanOrEqual(6 * layers + 3);
    // Two submits: the first layer is submitted early, to run while the others are recorded.
    expect(tiled.submits).toBe(2);
    expect(forward.dispatches).toBeGreaterThanOrEqual(2 * tiled.dispatches - 6);
  });
});

describe('tiled prefill with a head over 2^17 weights', () => {
  it("takes the model's own norm and head, and gives the forward's last logits (1e-4)", async () => {
    const config = createModelConfig({
      hiddenSize: 32,
      intermediateSize: 40,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      vocabSize: 4099,
    });
    const model = initializeModel(new CausalLM(device, config), { seed: 7, std: 0.2 });
    const prompt = promptOf(37, config.vocabSize, 8);
    const cache = KVCache.forModel(device, config, 1, prompt.length + 1);
    const decoder = new FusedDecoder(model, cache, [0], 1);
    try {
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
      expect(logits.length).toBe(config.vocabSize);
      expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: 'large head prefill' });
    } finally {
      decoder.dispose();
      cache.dispose();
      model.dispose();
    }
  });
});

describe('tiled prefill against Transformers goldens', () => {
  for (const name of ['llama', 'qwen2', 'qwen3'] as const) {
    it(`${name}: greedy tokens are Transformers' with every prompt through the tiled prefill (bias, q/k norm)`, async () => {
      const { model, golden } = await loadTransformersFixture(device, name);
      try {
        const { results, timings } = await generateWithTimings(model, null, [golden.greedy.prompt], {
          maxNewTokens: golden.greedy.tokens.length,
          stopTokens: [],
          // Every prompt over one token takes the tiled prefill.
          fusedPrefillTokens: 1,
          tiledPrefill: true,
        });
        expect(timings.fused).toBe(true);
        expect(results[0].tokens).toEqual(golden.greedy.tokens);
      } finally {
        model.dispose();
      }
    });
  }
});
