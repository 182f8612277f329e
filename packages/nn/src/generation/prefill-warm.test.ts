import { createDevice, type Device } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig } from '../config/model-config.js';
import { CausalLM } from '../models/llama.js';
import { initializeModel } from '../module/initialize.js';
import { generateWithTimings } from './generate.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/**
 * Calls after the first of one model and prompt length create nothing on the device: every
 * pipeline, buffer and bind group of the prefill is made by the first call and reused by the next
 * ones (the bench times calls 2 onwards; a pipeline or buffer made there is paid there). Counted,
 * not timed.
 */
describe('repeated generate calls of one model', () => {
  let model: CausalLM;
  beforeAll(() => {
    const config = createModelConfig({
      hiddenSize: 48,
      intermediateSize: 100,
      numHiddenLayers: 3,
      numAttentionHeads: 6,
      numKeyValueHeads: 2,
      vocabSize: 300,
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 256,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    model = initializeModel(new CausalLM(device, config), { seed: 3 });
  });
  afterAll(() => model?.dispose());

  const prompt = [1, ...Array.from({ length: 44 }, (_, i) => 3 + ((i * 7919) % 297))];

  for (const { label, maxNewTokens } of [
    { label: 'a prompt-only call (the tiled prefill)', maxNewTokens: 1 },
    { label: 'prefill and fused decode steps', maxNewTokens: 5 },
  ]) {
    it(`${label}: the second and third calls create no pipelines, buffers or bind groups`, async () => {
      const options = { maxNewTokens, stopTokens: [], tiledPrefill: true };
      const first = await generateWithTimings(model, null, [prompt], options);
      expect(first.timings.fused).toBe(true);
      for (let call = 2; call <= 3; call++) {
        const before = { ...device.stats };
        const again = await generateWithTimings(model, null, [prompt], options);
        expect(again.results[0].tokens).toEqual(first.results[0].tokens);
        const made = {
          pipelines: device.stats.pipelines - before.pipelines,
          buffers: device.stats.buffers - before.buffers,
          bindGroups: device.stats.bindGroups - before.bindGroups,
        };
        expect(made, `call ${call}`).toEqual({ pipelines: 0, buffers: 0, bindGroups: 0 });
      }
    });
  }
});
