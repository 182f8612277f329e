import { CausalLM, createModelConfig, initializeModel, type ModelConfig } from '@webtune/nn';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { trainableCausalLM } from './trainable-model.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

const SHAPE = {
  hiddenSize: 16,
  intermediateSize: 24,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  vocabSize: 32,
};

// Training's forward (layer by layer, in scopes) must be the model's own for every family:
// Gemma's embedding scale, local rotary tables and final soft-cap, Phi-3's partial rotary, SmolLM3's NoPE layers.
const FAMILIES: [string, ModelConfig][] = [
  [
    'gemma2',
    createModelConfig({
      ...SHAPE,
      architecture: 'Gemma2ForCausalLM',
      numKeyValueHeads: 1,
      headDim: 16,
      attnLogitSoftcapping: 2,
      finalLogitSoftcapping: 3,
      slidingWindow: 3,
      layerTypes: ['sliding_attention', 'full_attention'],
      tieWordEmbeddings: true,
    }),
  ],
  [
    'gemma3',
    createModelConfig({
      ...SHAPE,
      architecture: 'Gemma3ForCausalLM',
      headDim: 8,
      slidingWindow: 3,
      layerTypes: ['sliding_attention', 'full_attention'],
      localRope: { theta: 10, scaling: null },
    }),
  ],
  ['phi3', createModelConfig({ ...SHAPE, architecture: 'Phi3ForCausalLM', partialRotaryFactor: 0.5 })],
  ['smollm3', createModelConfig({ ...SHAPE, architecture: 'SmolLM3ForCausalLM', ropeLayers: [true, false] })],
];

describe('trainableCausalLM follows the model for every family', () => {
  for (const [name, config] of FAMILIES) {
    it(`${name}: head(hiddenStates(ids)) is forward(ids)`, async () => {
      const model = initializeModel(new CausalLM(device, config), { std: 0.3, seed: 5 });
      try {
        const trainable = trainableCausalLM(model);
        const ids = [1, 5, 9, 2, 30, 7, 7, 11];
        const [viaTraining, viaForward] = await device.scope(async () => {
          const input = device.fromArray(ids, [1, ids.length], 'i32');
          return Promise.all([
            trainable.head(trainable.hiddenStates(input)).toArray(),
            model.forward(input).toArray(),
          ]);
        });
        expectClose(viaTraining, viaForward, { atol: 1e-6, rtol: 0, label: name });
      } finally {
        model.dispose();
      }
    });
  }
});
