import {
  autograd,
  backward,
  checkpoint,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  type Tensor,
  zeroGrad,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bottleneckConfig } from './adapter/adapter-config.js';
import { loraConfig } from './lora/lora-config.js';
import { getPeftModel, type PeftConfig, type PeftModel } from './peft-model.js';
import { maxAbsDifference, randomIds, TINY_MODELS, tinyModel } from './testing/models.js';

// Dropout masks are a pure function of (runtime seed, layer path, shape): gradient
// checkpointing's recomputation and a resumed run must draw the masks of the first forward.

const CONFIGS: Record<string, () => PeftConfig> = {
  'LoRA all-linear, dropout 0.1': () =>
    loraConfig({ r: 4, lora_alpha: 8, target_modules: 'all-linear', lora_dropout: 0.1 }),
  'DoRA q,v, dropout 0.1': () =>
    loraConfig({
      r: 2,
      lora_alpha: 4,
      use_dora: true,
      target_modules: ['q_proj', 'v_proj'],
      lora_dropout: 0.1,
    }),
  'Adapter after MLP, dropout 0.1': () =>
    bottleneckConfig({ bottleneck_size: 4, target_modules: ['mlp'], adapter_dropout: 0.1 }),
};

const VOCAB = TINY_MODELS.llama.vocabSize;

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

/** A tiny Llama with the adapter, its tensors moved off their initial values (B = 0 would hide A's mask). */
async function adaptedModel(makeConfig: () => PeftConfig): Promise<PeftModel> {
  const peft = await getPeftModel(tinyModel(device, 'llama', 3), makeConfig(), { seed: 7 });
  const rng = new Rng(21);
  for (const [name, tensor] of peft.adapterStateDict()) {
    const current = (await tensor.toArray()) as Float32Array;
    device.write(
      tensor,
      name.endsWith('lora_magnitude_vector')
        ? current.map((v) => v * (1 + 0.3 * (rng.next() - 0.5)))
        : rng.uniform(current.length, -0.5, 0.5),
    );
  }
  return peft;
}

/** The adapter's gradients of a cross-entropy loss, with or without checkpointing the forward. */
async function adapterGradients(peft: PeftModel, input: Tensor, labels: Tensor, checkpointed: boolean) {
  const trainable = peft.markTrainable();
  const loss = device.scope(() => {
    const logits = checkpointed ? checkpoint((ids) => peft.forward(ids), [input]) : peft.forward(input);
    const { loss } = autograd.crossEntropy(autograd.reshape(logits, [12, VOCAB]), labels.reshape([12]));
    backward(loss);
    return loss.keep();
  });
  const grads = new Map<string, Float32Array>();
  for (const [name, tensor] of trainable) {
    const grad = gradOf(tensor);
    expect(grad, `${name} should have a gradient`).not.toBeNull();
    grads.set(name, (await grad!.toArray()) as Float32Array);
  }
  const value = ((await loss.toArray()) as Float32Array)[0];
  loss.dispose();
  zeroGrad(trainable.map(([, t]) => t));
  for (const [, t] of trainable) requiresGrad(t, false);
  return { loss: value, grads };
}

describe('dropout masks are fixed by the runtime seed and the layer', () => {
  for (const [configName, makeConfig] of Object.entries(CONFIGS)) {
    it(`${configName}: same seed, same output; another seed, another output`, async () => {
      const peft = await adaptedModel(makeConfig);
      const input = randomIds(device, VOCAB, 2, 6, 11);
      const logits = (seed: number) => {
        peft.runtime.seed = seed;
        return device.scope(() => peft.forward(input).toArray()) as Promise<Float32Array>;
      };
      const evaluation = await logits(5);
      peft.train();
      const first = await logits(5);
      const second = await logits(5);
      const other = await logits(6);
      peft.eval();
      expect(maxAbsDifference(first, evaluation)).toBeGreaterThan(1e-4); // dropout did apply
      expect(second).toEqual(first);
      expect(maxAbsDifference(other, first)).toBeGreaterThan(1e-4);
      // A fresh copy of the model (a resumed run) draws the same masks for the same seed.
      const copy = await adaptedModel(makeConfig);
      copy.train();
      copy.runtime.seed = 5;
      expect(await device.scope(() => copy.forward(input).toArray())).toEqual(first);
      copy.model.dispose();
      peft.model.dispose();
    });

    it(`${configName}: gradient checkpointing gives the gradients of the plain forward`, async () => {
      const peft = await adaptedModel(makeConfig);
      const input = randomIds(device, VOCAB, 2, 6, 11);
      const labels = randomIds(device, VOCAB, 2, 6, 99);
      peft.train();
      peft.runtime.seed = 1234;
      const plain = await adapterGradients(peft, input, labels, false);
      const checkpointed = await adapterGradients(peft, input, labels, true);
      expect(checkpointed.loss).toBe(plain.loss);
      for (const [name, grad] of plain.grads) {
        expect(
          grad.some((v) => v !== 0),
          `${name}: gradient is all zero`,
        ).toBe(true);
        expectClose(checkpointed.grads.get(name)!, grad, { rtol: 1e-5, atol: 1e-7, label: name });
      }
      // The masks matter: without dropout the gradients are others.
      peft.eval();
      const noDropout = await adapterGradients(peft, input, labels, false);
      const [name, grad] = [...plain.grads][0];
      expect(maxAbsDifference(noDropout.grads.get(name)!, grad)).toBeGreaterThan(1e-6);
      peft.model.dispose();
    });
  }
});
