import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BaseFormat, type CausalLM, loadPretrained, memoryFileSource } from '@webtune/nn';
import { readSafetensorsBytes } from '@webtune/safetensors';
import {
  adamwStep,
  autograd,
  backward,
  createDevice,
  type Device,
  gradOf,
  requiresGrad,
  type Tensor,
  zeroGrad,
  zeros,
} from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTER_WEIGHTS_FILE, loadAdapter, saveAdapter } from '../files/adapter-files.js';
import { getPeftModel } from '../peft-model.js';
import { FIXTURES, memoryFolder } from '../testing/models.js';
import { loraConfig } from './lora-config.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/**
 * Training the embedding and the head on a packed frozen base (LLaMA-Factory's
 * `additional_target` / PEFT's `modules_to_save` with `quantization_bit`): the trained modules get
 * an f32 copy decoded from the packed table, the rest of the model stays packed, the loss goes
 * down, and the saved adapter has the layout of one trained on an f32 base and loads back.
 */
const INPUT_IDS = [
  [1, 5, 9, 14, 3, 22, 41, 7],
  [1, 33, 2, 18, 60, 12, 9, 27],
];

function source(name: string) {
  const folder = join(FIXTURES, 'transformers', name);
  const files: Record<string, Uint8Array> = {};
  for (const file of ['config.json', 'model.safetensors']) files[file] = readFileSync(join(folder, file));
  return memoryFileSource(files, folder);
}

function meanLoss(model: CausalLM, inputIds: number[][]): Tensor {
  const [batch, seq] = [inputIds.length, inputIds[0].length];
  const logits = model.forward(device.fromArray(inputIds.flat(), [batch, seq], 'i32'));
  const vocab = logits.shape[2];
  const shifted = autograd.reshape(autograd.slice(logits, [0, 0, 0], [batch, seq - 1, vocab]), [
    batch * (seq - 1),
    vocab,
  ]);
  const targets = device.fromArray(
    inputIds.flatMap((row) => row.slice(1)),
    [batch * (seq - 1)],
    'i32',
  );
  return autograd.crossEntropy(shifted, targets, { reduction: 'mean' }).loss;
}

const CONFIG = {
  r: 2,
  lora_alpha: 4,
  target_modules: ['q_proj'],
  modules_to_save: ['embed_tokens', 'lm_head'],
};

/** Tensor names and shapes of a saved adapter file. */
function layout(files: Map<string, Uint8Array>): string[] {
  return readSafetensorsBytes(files.get(ADAPTER_WEIGHTS_FILE)!).tensors.map(
    (tensor) => `${tensor.name} ${tensor.dtype} [${tensor.shape.join(', ')}]`,
  );
}

// llama: an untied head (its own Q8_0 table); qwen2: the head tied to the embedding.
const CASES: [string, BaseFormat][] = [
  ['llama', 'q8_0'],
  ['qwen2', 'q4_0'],
];

describe('modules_to_save on a packed base', () => {
  for (const [name, format] of CASES) {
    it(`${name}, ${format} base: embed_tokens and lm_head train as decoded f32 copies, the adapter saves and loads`, async () => {
      const { model } = await loadPretrained(device, source(name), { baseFormat: format });
      const peft = await getPeftModel(model, loraConfig(CONFIG));
      try {
        // The copies are f32 and hold the decoded table; the originals and projections stay packed.
        const packed = new Map(model.namedPackedParameters());
        const table = packed.get('model.embed_tokens.original_module.weight');
        expect(table, [...packed.keys()].join(', ')).toBeDefined();
        expect(packed.has('model.layers.0.self_attn.q_proj.base_layer.weight')).toBe(true);
        const trainable = new Map(peft.trainableParameters());
        const embedCopy = trainable.get('model.embed_tokens.modules_to_save.default.weight');
        const headCopy = trainable.get('lm_head.modules_to_save.default.weight');
        expect(embedCopy?.dtype).toBe('f32');
        expect(headCopy?.dtype).toBe('f32');
        expectClose(await embedCopy!.toArray(), await table!.decode(), {
          atol: 1e-6,
          label: 'embedding copy',
        });

        const tensors = [...trainable.values()];
        for (const tensor of tensors) requiresGrad(tensor);
        const moments = tensors.map((tensor) => ({
          m: zeros(device, tensor.shape, 'f32').keep(),
          v: zeros(device, tensor.shape, 'f32').keep(),
        }));
        const losses: number[] = [];
        for (let step = 1; step <= 8; step++) {
          losses.push(
            await device.scope(async () => {
              zeroGrad(tensors);
              const loss = meanLoss(peft.model, INPUT_IDS);
              backward(loss);
              if (step === 1) {
                // The embedding rows of the input ids get a gradient.
                const grad = (await gradOf(embedCopy!)!.toArray()) as Float32Array;
                const width = embedCopy!.shape[1];
                const row = INPUT_IDS[0][1];
                expect(grad.subarray(row * width, (row + 1) * width).some((v) => v !== 0)).toBe(true);
              }
              tensors.forEach((tensor, i) => {
                adamwStep(tensor, gradOf(tensor)!, moments[i].m, moments[i].v, { lr: 1e-2, step });
              });
              return loss.item();
            }),
          );
        }
        for (const moment of moments) {
          moment.m.dispose();
          moment.v.dispose();
        }
        expect(losses.at(-1)!).toBeLessThan(losses[0] - 0.05);
        // With adapters disabled the packed original answers, untouched by training.
        const trainedLoss = await device.scope(async () => meanLoss(peft.model, INPUT_IDS).item());
        const baseLoss = await device.scope(async () =>
          peft.withAdaptersDisabled(() => meanLoss(peft.model, INPUT_IDS).item()),
        );
        expect(baseLoss).toBeGreaterThan(trainedLoss + 0.05);

        const folder = memoryFolder();
        await saveAdapter(peft, folder.sink);
        // The file has the layout of the same adapter made on an f32 base.
        const plain = (await loadPretrained(device, source(name))).model;
        const plainPeft = await getPeftModel(plain, loraConfig(CONFIG));
        const plainFolder = memoryFolder();
        await saveAdapter(plainPeft, plainFolder.sink);
        plain.dispose();
        expect(layout(folder.files)).toEqual(layout(plainFolder.files));
        expect(layout(folder.files).some((line) => line.includes('embed_tokens.weight'))).toBe(true);

        // Loaded back onto a fresh packed base it gives the trained model's loss.
        const { model: fresh } = await loadPretrained(device, source(name), { baseFormat: format });
        const reloaded = await loadAdapter(fresh, folder.source());
        const reloadedLoss = await device.scope(async () => meanLoss(reloaded.model, INPUT_IDS).item());
        fresh.dispose();
        expect(Math.abs(reloadedLoss - trainedLoss)).toBeLessThan(1e-5);
      } finally {
        model.dispose();
      }
    });
  }
});
