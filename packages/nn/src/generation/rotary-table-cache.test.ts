import { createDevice, type Device, rotaryTableValues, type Tensor } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig, type ModelConfig } from '../config/model-config.js';
import { CausalLM } from '../models/llama.js';
import { initializeModel } from '../module/initialize.js';
import { generateWithTimings } from './generate.js';
import { RotaryTableCache } from './rotary-table-cache.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

const small = (overrides: Partial<Parameters<typeof createModelConfig>[0]> = {}): ModelConfig =>
  createModelConfig({
    hiddenSize: 48,
    intermediateSize: 100,
    numHiddenLayers: 2,
    numAttentionHeads: 6,
    numKeyValueHeads: 2,
    vocabSize: 300,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 256,
    bosTokenId: 1,
    eosTokenIds: [2],
    ...overrides,
  });

/** The table against float64 values of the same positions, base and scaling. */
async function expectTables(cos: Tensor, sin: Tensor, config: ModelConfig, capacity: number) {
  const reference = rotaryTableValues({
    positions: Array.from({ length: capacity }, (_, i) => i),
    dim: config.headDim,
    base: config.ropeTheta,
    scaling: config.ropeScaling ?? undefined,
  });
  expect(cos.shape).toEqual([capacity, config.headDim / 2]);
  const [c, s] = [await cos.toArray(), await sin.toArray()];
  for (let i = 0; i < reference.cos.length; i++) {
    expect(Math.abs(c[i] - reference.cos[i])).toBeLessThan(1e-6);
    expect(Math.abs(s[i] - reference.sin[i])).toBeLessThan(1e-6);
  }
}

describe('RotaryTableCache', () => {
  it('gives views of one kept set while the device, config and capacity stay', async () => {
    const cache = new RotaryTableCache();
    const config = small();
    const live = device.memory().liveTensors;
    const first = cache.tablesFor(device, config, 37);
    const second = cache.tablesFor(device, config, 37);
    expect(cache.builds).toBe(1);
    expect(second.cos.binding('test').buffer).toBe(first.cos.binding('test').buffer);
    await expectTables(second.cos, second.sin, config, 37);
    // The kept pair plus two views per call.
    expect(device.memory().liveTensors).toBe(live + 6);
    for (const set of [first, second]) {
      set.cos.dispose();
      set.sin.dispose();
    }
    cache.release();
    expect(device.memory().liveTensors).toBe(live);
  });

  it('builds again for another capacity, base, scaling or device, with the right values', async () => {
    const cache = new RotaryTableCache();
    const config = small();
    const take = async (cfg: ModelConfig, capacity: number, on = device) => {
      const set = cache.tablesFor(on, cfg, capacity);
      await expectTables(set.cos, set.sin, cfg, capacity);
      set.cos.dispose();
      set.sin.dispose();
    };
    await take(config, 40);
    await take(config, 41);
    expect(cache.builds).toBe(2);
    // A shorter table is not a prefix of a longer one under dynamic scaling (it reads the length).
    const dynamic = small({ ropeScaling: { type: 'dynamic', factor: 4, originalMaxPositionEmbeddings: 16 } });
    await take(dynamic, 41);
    await take(dynamic, 30);
    expect(cache.builds).toBe(4);
    // The same object with its base changed in place.
    const changed = small();
    await take(changed, 30);
    (changed as { ropeTheta: number }).ropeTheta = 500;
    await take(changed, 30);
    expect(cache.builds).toBe(6);
    const other = await createDevice();
    try {
      await take(changed, 30, other);
      expect(cache.builds).toBe(7);
      cache.release();
    } finally {
      other.destroy();
    }
  });

  it('keeps a released table readable through the views still held', async () => {
    const cache = new RotaryTableCache();
    const config = small();
    const held = cache.tablesFor(device, config, 20);
    cache.release();
    await expectTables(held.cos, held.sin, config, 20);
    held.cos.dispose();
    held.sin.dispose();
  });
});

describe('generate and the rotary tables', () => {
  it('builds them once for repeated calls, again for another capacity, and frees them with the model', async () => {
    const live = device.memory().liveTensors;
    const model = initializeModel(new CausalLM(device, small({ numHiddenLayers: 1 })), { seed: 5 });
    const parameters = device.memory().liveTensors - live;
    const prompt = [1, ...Array.from({ length: 40 }, (_, i) => 3 + ((i * 31) % 290))];
    const options = { maxNewTokens: 3, stopTokens: [], tiledPrefill: true };
    const first = await generateWithTimings(model, null, [prompt], options);
    expect(first.timings.fused).toBe(true);
    const again = await generateWithTimings(model, null, [prompt], options);
    expect(again.results[0].tokens).toEqual(first.results[0].tokens);
    expect(model.rotaryTableCache.builds).toBe(1);
    // Only the kept cos and sin outlive the calls.
    expect(device.memory().liveTensors).toBe(live + parameters + 2);
    const longer = await generateWithTimings(model, null, [prompt], { ...options, maxNewTokens: 5 });
    expect(longer.results[0].tokens.slice(0, 3)).toEqual(first.results[0].tokens);
    expect(model.rotaryTableCache.builds).toBe(2);
    model.releaseCachedTables();
    expect(device.memory().liveTensors).toBe(live + parameters);
    // Released, the next call builds them again and decodes the same tokens.
    const rebuilt = await generateWithTimings(model, null, [prompt], options);
    expect(rebuilt.results[0].tokens).toEqual(first.results[0].tokens);
    expect(model.rotaryTableCache.builds).toBe(3);
    model.dispose();
    expect(device.memory().liveTensors).toBe(live);
  });
});
