import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BaseFormat, type CausalLM, loadPretrained, memoryFileSource } from '@webtune/nn';
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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../files/adapter-files.js';
import { FIXTURES } from '../testing/models.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/**
 * QLoRA on each family's Transformers model (tools/golden/transformers_families.py): the frozen
 * projections held as Q8_0 / Q4_0 blocks, the loss of the packed base within the bounds
 * docs/guide/quantization.md gives against the f32 base (Q8_0 0.02, Q4_0 0.15 nats), and the
 * LoRA adapter PEFT made on top trains: 8 AdamW steps lower the loss.
 */
const BOUNDS: [BaseFormat, number][] = [
  ['q8_0', 0.02],
  ['q4_0', 0.15],
];
const NAMES = ['gemma2', 'gemma3', 'phi3', 'phi4-mini', 'smollm3'];

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

describe('QLoRA on the families (packed Q8_0 / Q4_0 base, PEFT adapter on top)', () => {
  for (const name of NAMES) {
    for (const [format, bound] of BOUNDS) {
      it(`${name}, ${format}: base loss within ${bound} nats of the f32 base, LoRA trains`, async () => {
        const folder = join(FIXTURES, 'transformers', name);
        const files: Record<string, Uint8Array> = {};
        for (const file of [
          'config.json',
          'model.safetensors',
          'adapter_config.json',
          'adapter_model.safetensors',
        ]) {
          files[file] = readFileSync(join(folder, file));
        }
        const inputIds = (
          JSON.parse(readFileSync(join(folder, 'lora-golden.json'), 'utf8')) as { input_ids: number[][] }
        ).input_ids;
        const source = memoryFileSource(files, folder);
        const plain = (await loadPretrained(device, source)).model;
        const f32Loss = await device.scope(async () => meanLoss(plain, inputIds).item());
        plain.dispose();
        const { model } = await loadPretrained(device, source, { baseFormat: format });
        try {
          expect([...model.namedPackedParameters()].length).toBeGreaterThan(0);
          const baseLoss = await device.scope(async () => meanLoss(model, inputIds).item());
          console.log(
            `${name} ${format}: base loss ${baseLoss.toFixed(5)}, f32 ${f32Loss.toFixed(5)}, |delta| ${Math.abs(baseLoss - f32Loss).toExponential(2)}`,
          );
          expect(Math.abs(baseLoss - f32Loss)).toBeLessThan(bound);
          const peft = await loadAdapter(model, source);
          const trainable = peft.trainableParameters().map(([, tensor]) => tensor);
          for (const tensor of trainable) requiresGrad(tensor);
          const moments = trainable.map((tensor) => ({
            m: zeros(device, tensor.shape, 'f32').keep(),
            v: zeros(device, tensor.shape, 'f32').keep(),
          }));
          const losses: number[] = [];
          for (let step = 1; step <= 8; step++) {
            losses.push(
              await device.scope(async () => {
                zeroGrad(trainable);
                const loss = meanLoss(peft.model, inputIds);
                backward(loss);
                trainable.forEach((tensor, i) => {
                  adamwStep(tensor, gradOf(tensor)!, moments[i].m, moments[i].v, { lr: 1e-2, step });
                });
                return loss.item();
              }),
            );
          }
          expect(losses.at(-1)!).toBeLessThan(losses[0] - 0.05);
          for (const moment of moments) {
            moment.m.dispose();
            moment.v.dispose();
          }
        } finally {
          model.dispose();
        }
      });
    }
  }
});
