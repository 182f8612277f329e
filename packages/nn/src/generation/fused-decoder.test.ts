import { createDevice, type Device } from '@webtune/tensors';
import { expectClose, fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig } from '../config/model-config.js';
import { packFrozenWeights } from '../loading/frozen-weights.js';
import { CausalLM } from '../models/llama.js';
import { initializeModel } from '../module/initialize.js';
import { loadModelDirectory } from '../node.js';
import { loadTransformersFixture } from '../testing/fixtures.js';
import { FusedDecoder, fusedDecodeUnsupported } from './fused-decoder.js';
import { generateWithTimings } from './generate.js';
import { KVCache } from './kv-cache.js';

const HF = 'models/stories260K-hf';
let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/**
 * After the prompt (through the forward into both caches), each fused step's logits equal the
 * forward's (within 1e-4), on both fused layer paths (a dispatch per layer, five per layer).
 */
async function expectStepLogits(model: CausalLM, prompt: number[], steps: number[]): Promise<void> {
  for (const layerKernel of [true, false]) {
    const reference = KVCache.forModel(device, model.config, 1, 16);
    const fusedCache = KVCache.forModel(device, model.config, 1, 16);
    const decoder = new FusedDecoder(model, fusedCache, [0], 1, layerKernel);
    try {
      for (const cache of [reference, fusedCache]) {
        await device.scope(async () => {
          model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { cache, logits: 'last' });
          await device.sync();
        });
      }
      for (const id of steps) {
        const expected = await device.scope(async () =>
          model
            .forward(device.fromArray([id], [1, 1], 'i32'), { cache: reference, logits: 'last' })
            .toArray(),
        );
        decoder.setIds([id]);
        decoder.encodeLogits(fusedCache.length);
        fusedCache.advance(1);
        expectClose(await decoder.logits.toArray(), expected, {
          atol: 1e-4,
          rtol: 0,
          label: `${layerKernel ? 'layer kernel' : 'five dispatches'}, step ${id}`,
        });
      }
    } finally {
      decoder.dispose();
      reference.dispose();
      fusedCache.dispose();
    }
  }
}

describe.skipIf(!requireFixtures(HF))('fused decoding on stories260K', () => {
  let model: CausalLM;
  beforeAll(async () => {
    ({ model } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM });
  });
  afterAll(() => model?.dispose());

  for (const layerKernel of [true, false]) {
    it(`gives the logits of the model forward at every cached step (within 1e-4), ${layerKernel ? 'a dispatch per layer (decodeLayer)' : 'five dispatches per layer'}`, async () => {
      expect(fusedDecodeUnsupported(model)).toBeNull();
      const prompt = [1, 403, 407, 261, 378];
      const steps = [300, 17, 450, 2];
      const reference = KVCache.forModel(device, model.config, 1, 16);
      const fusedCache = KVCache.forModel(device, model.config, 1, 16);
      const decoder = new FusedDecoder(model, fusedCache, [0], 1, layerKernel);
      try {
        for (const cache of [reference, fusedCache]) {
          await device.scope(async () => {
            model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { cache, logits: 'last' });
            await device.sync();
          });
        }
        for (const id of steps) {
          const expected = await device.scope(async () =>
            model
              .forward(device.fromArray([id], [1, 1], 'i32'), { cache: reference, logits: 'last' })
              .toArray(),
          );
          const before = device.stats.dispatches;
          decoder.setIds([id]);
          decoder.encodeLogits(fusedCache.length);
          // 5 layers (the last with the final norm and head), or embed + 5 x 5 + head.
          expect(device.stats.dispatches - before).toBe(layerKernel ? 5 : 27);
          fusedCache.advance(1);
          expectClose(await decoder.logits.toArray(), expected, { atol: 1e-4, rtol: 0, label: `step ${id}` });
        }
      } finally {
        decoder.dispose();
        reference.dispose();
        fusedCache.dispose();
      }
    });
  }

  it('prefills ragged left-padded prompts in 6 dispatches per layer, each row giving the logits of its own forward (within 1e-4)', async () => {
    const prompts = [
      [1, 403, 407, 261, 378, 90, 12],
      [1, 70],
      [1, 300, 17, 450],
    ];
    const longest = 7;
    const padding = prompts.map((p) => longest - p.length);
    const cache = KVCache.forModel(device, model.config, prompts.length, 12);
    const decoder = new FusedDecoder(model, cache, padding, 1);
    try {
      const ids = new Int32Array(prompts.length * longest);
      for (const [b, p] of prompts.entries()) ids.set(p, b * longest + padding[b]);
      const before = device.stats.dispatches;
      const logits = (await decoder.prefill(ids, longest, 0, false)) as Float32Array;
      // embed, 5 layers x 6, final norm + head.
      expect(device.stats.dispatches - before).toBe(32);
      const vocab = model.config.vocabSize;
      for (const [b, prompt] of prompts.entries()) {
        const expected = await device.scope(async () =>
          model.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { logits: 'last' }).toArray(),
        );
        expectClose(logits.subarray(b * vocab, (b + 1) * vocab), expected, {
          atol: 1e-4,
          rtol: 0,
          label: `row ${b}`,
        });
      }
      // The cache holds the prompt: the next step continues each row as its own forward does.
      cache.advance(longest);
      decoder.setIds([5, 6, 7]);
      decoder.encodeLogits(cache.length);
      const stepped = await decoder.logits.toArray();
      for (const [b, prompt] of prompts.entries()) {
        const expected = await device.scope(async () =>
          model
            .forward(device.fromArray([...prompt, 5 + b], [1, prompt.length + 1], 'i32'), { logits: 'last' })
            .toArray(),
        );
        expectClose(stepped.subarray(b * vocab, (b + 1) * vocab), expected, {
          atol: 1e-4,
          rtol: 0,
          label: `step row ${b}`,
        });
      }
    } finally {
      decoder.dispose();
      cache.dispose();
    }
  });

  it('decodes an f16 base (the LoRA default) on the fused path: logits of its own forward within 1e-4, the same greedy tokens', async () => {
    const { model: half } = (await loadModelDirectory(device, fixturePath(HF))) as { model: CausalLM };
    try {
      await packFrozenWeights(half, 'f16');
      expect(half.getSubmodule('model.layers.0.self_attn.q_proj').packedParameter('weight')?.format).toBe(
        'f16',
      );
      // The token table (and the tied head) is stored in f16 too, read by the packed gather and head.
      expect(half.getSubmodule('model.embed_tokens').packedParameter('weight')?.format).toBe('f16');
      expect(fusedDecodeUnsupported(half)).toBeNull();
      const prompt = [1, 403, 407, 261];
      const cache = KVCache.forModel(device, half.config, 1, 8);
      const decoder = new FusedDecoder(half, cache, [0], 1);
      try {
        const logits = (await decoder.prefill(
          Int32Array.from(prompt),
          prompt.length,
          0,
          false,
        )) as Float32Array;
        const expected = await device.scope(async () =>
          half.forward(device.fromArray(prompt, [1, prompt.length], 'i32'), { logits: 'last' }).toArray(),
        );
        expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: 'f16 prefill' });
        cache.advance(prompt.length);
        decoder.setIds([300]);
        decoder.encodeLogits(cache.length);
        const stepExpected = await device.scope(async () =>
          half.forward(device.fromArray([...prompt, 300], [1, 5], 'i32'), { logits: 'last' }).toArray(),
        );
        expectClose(await decoder.logits.toArray(), stepExpected, { atol: 1e-4, rtol: 0, label: 'f16 step' });
      } finally {
        decoder.dispose();
        cache.dispose();
      }
      const options = { maxNewTokens: 20, stopTokens: [] };
      const plain = await generateWithTimings(half, null, [prompt], { ...options, fusedDecode: false });
      const fused = await generateWithTimings(half, null, [prompt], options);
      expect(fused.timings.fused).toBe(true);
      expect(fused.results[0].tokens).toEqual(plain.results[0].tokens);
    } finally {
      half.dispose();
    }
  });

  it('decodes an f16 base whose f16 table and tied head are split over 3 buffers (24 KiB bindings): the forward logits, the unfused tokens', async () => {
    // 128-byte f16 rows: 192 per 24 KiB binding, the 512-row table in 3 chunks; each projection
    // (at most 22,016 bytes) stays whole.
    const small = await createDevice({ maxBindingBytes: 24 * 1024 });
    try {
      const { model: half } = (await loadModelDirectory(small, fixturePath(HF))) as { model: CausalLM };
      try {
        await packFrozenWeights(half, 'f16');
        const table = half.getSubmodule('model.embed_tokens').packedParameter('weight');
        expect(table?.format).toBe('f16');
        expect(table?.chunks.length).toBe(3);
        expect(half.getSubmodule('lm_head').packedParameter('weight')).toBe(table);
        expect(fusedDecodeUnsupported(half)).toBeNull();
        const prompt = [1, 403, 407, 261];
        const cache = KVCache.forModel(small, half.config, 1, 8);
        const decoder = new FusedDecoder(half, cache, [0], 1);
        try {
          const logits = (await decoder.prefill(
            Int32Array.from(prompt),
            prompt.length,
            0,
            false,
          )) as Float32Array;
          const expected = await small.scope(async () =>
            half.forward(small.fromArray(prompt, [1, prompt.length], 'i32'), { logits: 'last' }).toArray(),
          );
          expectClose(logits, expected, { atol: 1e-4, rtol: 0, label: 'chunked f16 prefill' });
          cache.advance(prompt.length);
          decoder.setIds([300]);
          decoder.encodeLogits(cache.length);
          const stepExpected = await small.scope(async () =>
            half.forward(small.fromArray([...prompt, 300], [1, 5], 'i32'), { logits: 'last' }).toArray(),
          );
          expectClose(await decoder.logits.toArray(), stepExpected, {
            atol: 1e-4,
            rtol: 0,
            label: 'chunked f16 step',
          });
        } finally {
          decoder.dispose();
          cache.dispose();
        }
        const prompts = [[1, 403, 407, 261], [1]];
        const options = { maxNewTokens: 20, stopTokens: [] };
        const plain = await generateWithTimings(half, null, prompts, { ...options, fusedDecode: false });
        const fused = await generateWithTimings(half, null, prompts, options);
        expect(fused.timings.fused).toBe(true);
        expect(fused.results.map((r) => r.tokens)).toEqual(plain.results.map((r) => r.tokens));
      } finally {
        half.dispose();
      }
    } finally {
      small.destroy();
    }
  });

  it('decodes ragged batches as the unfused path does, with far fewer dispatches and submits', async () => {
    const prompts = [[1, 403, 407, 261], [1], [1, 70, 80, 90, 100, 110, 120]];
    const run = (fusedDecode: boolean, stepsPerSubmit?: number, fusedPrefillTokens?: number) =>
      generateWithTimings(model, null, prompts, {
        maxNewTokens: 24,
        stopTokens: [],
        fusedDecode,
        stepsPerSubmit,
        fusedPrefillTokens,
      });
    const plain = await run(false);
    const fused = await run(true);
    const single = await run(true, 1);
    // The prompt through the model's forward (as long prompts go), then the fused steps on its cache.
    const forwardPrefill = await run(true, undefined, 0);
    expect(plain.timings.fused).toBe(false);
    expect(fused.timings.fused).toBe(true);
    expect(forwardPrefill.timings.fused).toBe(true);
    for (const other of [fused, single, forwardPrefill]) {
      expect(other.results.map((r) => r.tokens)).toEqual(plain.results.map((r) => r.tokens));
    }
    const perStep = (t: typeof plain.timings) => ({
      dispatches: t.decodeDispatches / t.decodeSteps,
      submits: t.decodeSubmits / t.decodeSteps,
    });
    // A dispatch per layer (decodeLayer: the layers are small; the last one embeds nothing but
    // takes the final norm, the head and the argmax) = 5 dispatches per step; 8 steps per submit.
    expect(perStep(fused.timings).dispatches).toBe(5);
    expect(perStep(fused.timings).submits).toBeLessThanOrEqual(0.25);
    expect(perStep(plain.timings).dispatches).toBeGreaterThan(10 * 5);
    expect(perStep(single.timings).submits).toBeLessThanOrEqual(1.05);
  });

  it('stops inside a chunk of steps exactly where the unfused path stops, and samples the same tokens', async () => {
    const base = { maxNewTokens: 30 } as const;
    const plain = await generateWithTimings(model, null, [[1]], {
      ...base,
      fusedDecode: false,
      stopTokens: [],
    });
    const stop = plain.results[0].tokens[11];
    const first = plain.results[0].tokens.indexOf(stop);
    const stopped = await generateWithTimings(model, null, [[1]], { ...base, stopTokens: [stop] });
    expect(stopped.results[0].tokens).toEqual(plain.results[0].tokens.slice(0, first));
    expect(stopped.results[0].finishReason).toBe('stop-token');

    const sampling = { maxNewTokens: 20, stopTokens: [], temperature: 0.9, topK: 40, topP: 0.95, seed: 7 };
    const sampledPlain = await generateWithTimings(model, null, [[1], [1, 403]], {
      ...sampling,
      fusedDecode: false,
    });
    const sampledFused = await generateWithTimings(model, null, [[1], [1, 403]], sampling);
    expect(sampledFused.timings.fused).toBe(true);
    expect(sampledFused.results.map((r) => r.tokens)).toEqual(sampledPlain.results.map((r) => r.tokens));
  });

  it("samples on the device, eight steps per submit for one prompt, with the host sampler's tokens", async () => {
    for (const sampling of [
      { temperature: 1.2, minP: 0.05, repetitionPenalty: 1.3, seed: 3 },
      { temperature: 0.7, topK: 5, topP: 0.8, seed: 11 },
      { repetitionPenalty: 1.5 },
    ]) {
      const options = { maxNewTokens: 25, stopTokens: [], ...sampling };
      const plain = await generateWithTimings(model, null, [[1, 403]], { ...options, fusedDecode: false });
      const fused = await generateWithTimings(model, null, [[1, 403]], options);
      expect(fused.timings.fused).toBe(true);
      expect(fused.results[0].tokens).toEqual(plain.results[0].tokens);
      expect(
        fused.timings.decodeReadbacks / fused.timings.decodeSteps,
        JSON.stringify(fused.timings),
      ).toBeLessThanOrEqual(0.25);
    }
  });
});

describe('fused decoding against Transformers goldens', () => {
  for (const name of ['llama', 'qwen2', 'qwen3', 'mistral'] as const) {
    it(`${name}: 64 greedy tokens are Transformers' (the fused path taken; bias, q/k norm, sliding window)`, async () => {
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
      } finally {
        model.dispose();
      }
    });
  }

  it.skipIf(!requireFixtures(HF))(
    'leaves a model whose weights are split over several buffers to its own forward',
    async () => {
      const small = await createDevice({ maxBindingBytes: 64 * 1024 });
      try {
        const { model } = (await loadModelDirectory(small, fixturePath(HF))) as { model: CausalLM };
        expect(fusedDecodeUnsupported(model)).toMatch(/split over several buffers/);
        const { results, timings } = await generateWithTimings(model, null, [[1]], {
          maxNewTokens: 6,
          stopTokens: [],
        });
        expect(timings.fused).toBe(false);
        expect(results[0].tokens).toHaveLength(6);
        model.dispose();
      } finally {
        small.destroy();
      }
    },
  );

  it('mistral (sliding window 4): each step past the window gives the forward logits, on both fused layer paths', async () => {
    const { model } = await loadTransformersFixture(device, 'mistral');
    try {
      expect(model.config.slidingWindow).toBe(4);
      await expectStepLogits(model, [1, 5, 9, 14, 3, 22], [7, 30, 2, 41, 11, 8]);
    } finally {
      model.dispose();
    }
  });

  for (const slidingWindow of [6, null]) {
    it(`phi-3 (stacked qkv_proj and gate_up_proj, sliding window ${slidingWindow}): the forward's logits and the unfused path's tokens (prompt ${slidingWindow ? 'through the tiled prefill' : 'fused'})`, async () => {
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
        expect(fusedDecodeUnsupported(model)).toBeNull();
        await expectStepLogits(model, [1, 5, 9, 14], [7, 30, 2, 41, 11, 8, 50]);
        const prompts = [
          [1, 20, 33, 4, 5],
          [1, 9],
        ];
        const run = (fusedDecode: boolean) =>
          generateWithTimings(model, null, prompts, { maxNewTokens: 20, stopTokens: [], fusedDecode });
        const [plain, fused] = [await run(false), await run(true)];
        expect(fused.timings.fused).toBe(true);
        expect(fused.results.map((r) => r.tokens)).toEqual(plain.results.map((r) => r.tokens));
      } finally {
        model.dispose();
      }
    });
  }

  it('names why a model decodes through its own forward, in the generation timings too', async () => {
    for (const [name, reason] of [
      ['smollm3', /NoPE/],
      ['phi3', /LongRoPE/],
    ] as const) {
      const { model } = await loadTransformersFixture(device, name);
      try {
        expect(fusedDecodeUnsupported(model)).toMatch(reason);
        const { timings } = await generateWithTimings(model, null, [[1, 5]], {
          maxNewTokens: 2,
          stopTokens: [],
        });
        expect(timings.fused).toBe(false);
        expect(timings.unfusedReason).toMatch(reason);
      } finally {
        model.dispose();
      }
    }
  });
});
