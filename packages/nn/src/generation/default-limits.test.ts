import { type AdapterClass, createDevice, type Device } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig } from '../config/model-config.js';
import { type BaseFormat, packFrozenWeights } from '../loading/frozen-weights.js';
import { CausalLM } from '../models/llama.js';
import { initializeModel } from '../module/initialize.js';
import { generateWithTimings } from './generate.js';

/*
 * generate (the tiled prefill, then fused decoding) under WebGPU's default limits (8 storage
 * buffers per stage, 16 KiB of workgroup storage, 256 invocations), for every adapter class's
 * kernels, with an f32 and a Q4_0 base: the same tokens and the same first-step logits as on a
 * device that asked for the adapter's limits. Before the joined q/k norm weights, Qwen3's decode
 * attention (GPU classes) and prompt append (software) bound 9 storage buffers and failed there.
 */
const CLASSES: AdapterClass[] = ['software', 'integrated', 'discrete'];
const devices = new Map<string, Device>();
beforeAll(async () => {
  for (const adapterClass of CLASSES) {
    devices.set(`${adapterClass}:default`, await createDevice({ adapterClass, limits: 'default' }));
    devices.set(`${adapterClass}:adapter`, await createDevice({ adapterClass }));
  }
});
afterAll(() => {
  for (const device of devices.values()) device.destroy();
});

/** Qwen3's layout (q/k norms, GQA, tied head) at a tiny width, with head size 128. */
const CONFIG = createModelConfig({
  architecture: 'Qwen3ForCausalLM',
  hiddenSize: 64,
  intermediateSize: 96,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  numKeyValueHeads: 1,
  headDim: 128,
  qkNorm: true,
  vocabSize: 96,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 128,
  bosTokenId: 1,
  eosTokenIds: [2],
});
const PROMPTS = [
  [1, 40, 7, 33, 90, 12, 5, 61, 18, 77, 3],
  [1, 9, 52, 14],
];

async function generated(device: Device, baseFormat: BaseFormat) {
  const model = initializeModel(new CausalLM(device, CONFIG), { seed: 3 });
  try {
    if (baseFormat !== 'f32') await packFrozenWeights(model, baseFormat as Exclude<BaseFormat, 'f32'>);
    const { results, timings } = await generateWithTimings(model, null, PROMPTS, {
      maxNewTokens: 6,
      stopTokens: [],
    });
    return { sequences: results.map((result) => result.tokens), timings };
  } finally {
    model.dispose();
  }
}

describe('generate under WebGPU default limits, every adapter class', () => {
  for (const adapterClass of CLASSES) {
    for (const baseFormat of ['f32', 'q4_0'] as const) {
      it(`${adapterClass}, ${baseFormat} base: tiled prefill and fused decoding give the adapter-limits device's tokens`, async () => {
        const limited = devices.get(`${adapterClass}:default`)!;
        expect(limited.info.limits.maxStorageBuffersPerShaderStage).toBe(8);
        expect(limited.info.limits.maxComputeInvocationsPerWorkgroup).toBe(256);
        const under = await generated(limited, baseFormat);
        const over = await generated(devices.get(`${adapterClass}:adapter`)!, baseFormat);
        expect(under.timings.fused).toBe(true);
        expect(under.timings.prefillPath).toBe(over.timings.prefillPath);
        expect(under.sequences).toEqual(over.sequences);
        expect(under.sequences.every((tokens) => tokens.length === 6)).toBe(true);
      });
    }
  }
});

describe('generate under WebGPU default limits: products that would bind more than 8 storage buffers', () => {
  // Qwen2's q/k/v with their biases bind 9 (x, norm, three weights, three biases, out): such a
  // device decodes and prefills through the forward, with the same tokens.
  const qwen2 = createModelConfig({
    architecture: 'Qwen2ForCausalLM',
    hiddenSize: 64,
    intermediateSize: 96,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    qkvBias: true,
    vocabSize: 96,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 128,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  for (const adapterClass of CLASSES) {
    it(`${adapterClass}: Qwen2 (q/k/v biases) decodes through the forward, with the adapter-limits device's tokens`, async () => {
      const run = async (device: Device) => {
        const model = initializeModel(new CausalLM(device, qwen2), { seed: 4 });
        try {
          const { results, timings } = await generateWithTimings(model, null, PROMPTS, {
            maxNewTokens: 5,
            stopTokens: [],
          });
          return { tokens: results.map((result) => result.tokens), timings };
        } finally {
          model.dispose();
        }
      };
      const under = await run(devices.get(`${adapterClass}:default`)!);
      const over = await run(devices.get(`${adapterClass}:adapter`)!);
      expect(under.timings.unfusedReason).toMatch(
        /q\/k\/v binds 9 storage buffers, over this device's 8 per stage/,
      );
      expect(under.timings.prefillPath).toBe('forward');
      expect(over.timings.fused).toBe(true);
      expect(under.tokens).toEqual(over.tokens);
    });
  }
});
