import { readFileSync } from 'node:fs';
import { loadPretrained, memoryFileSource } from '@webtune/nn';
import { loadAdapter } from '@webtune/peft';
import { readSafetensorsBytes } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from './checkpoint/training-storage.js';
import type { StepEndEvent } from './events.js';
import { trainableCausalLM, trainablePeftModel } from './model/trainable-model.js';
import { supervisedTask } from './tasks/sft-task.js';
import { train } from './trainer.js';

/** golden.json of tools/golden/trainer_steps.py: Transformers + PEFT + torch.optim.AdamW, float64. */
interface StepsGolden {
  settings: {
    learning_rate: number;
    weight_decay: number;
    adam_beta1: number;
    adam_beta2: number;
    adam_epsilon: number;
    max_grad_norm: number;
    max_steps: number;
    per_device_train_batch_size: number;
  };
  rows: { input_ids: number[]; labels: number[] }[];
  steps: { loss: number; grad_norm: number; learning_rate: number; lora: Record<string, number[]> }[];
}

const FOLDER = new URL('./__fixtures__/lora-sft-steps/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, FOLDER));

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe('three LoRA SFT steps against Transformers + PEFT + torch.optim.AdamW (tools/golden/trainer_steps.py)', () => {
  // chunkRows 3: the frozen head's chunks are differentiated in forward (tokenCrossEntropy's
  // `frozen`, from TrainableModel.headFrozen) instead of being recomputed in backward.
  it.each([
    ['the whole classifier at once', 0],
    ['the classifier in chunks of 3 rows, frozen', 3],
  ])(
    "the trainer's loss, grad norm, learning rate and LoRA weights after each step are PyTorch's (%s)",
    async (_, chunkRows) => {
      const golden = JSON.parse(read('golden.json').toString('utf8')) as StepsGolden;
      const files: Record<string, Uint8Array> = {};
      for (const name of [
        'config.json',
        'model.safetensors',
        'adapter_config.json',
        'adapter_model.safetensors',
      ])
        files[name] = read(name);
      const source = memoryFileSource(files, 'lora-sft-steps');
      const { model } = await loadPretrained(device, source);
      // PEFT's own initial adapter (lora_B zero), as get_peft_model made it.
      const peft = await loadAdapter(model, source);
      // LoRA leaves lm_head frozen: the chunked case takes the row-gradient path.
      expect(trainablePeftModel(peft).headFrozen?.()).toBe(true);
      // Full fine-tuning trains the head (tied to the embedding): its chunks stay checkpointed.
      expect(trainableCausalLM(model).headFrozen?.()).toBe(false);
      expect(trainableCausalLM(model, { trainable: ['model.norm.weight'] }).headFrozen?.()).toBe(true);
      const storage = memoryStorage();
      const steps: StepEndEvent[] = [];
      try {
        const { settings } = golden;
        await train({
          model: trainablePeftModel(peft),
          task: supervisedTask({ chunkRows }),
          train: golden.rows.map((row) => ({ inputIds: row.input_ids, labels: row.labels })),
          args: {
            maxSteps: settings.max_steps,
            perDeviceTrainBatchSize: settings.per_device_train_batch_size,
            learningRate: settings.learning_rate,
            weightDecay: settings.weight_decay,
            adamBeta1: settings.adam_beta1,
            adamBeta2: settings.adam_beta2,
            adamEpsilon: settings.adam_epsilon,
            maxGradNorm: settings.max_grad_norm,
            lrSchedulerType: 'linear',
            loggingSteps: 1,
            saveSteps: 1,
            shuffle: false,
          },
          storage,
          onEvent: (event) => {
            if (event.type === 'step-end') steps.push(event);
          },
        });
        expect(steps.map((s) => s.step)).toEqual([1, 2, 3]);
        for (const [index, expected] of golden.steps.entries()) {
          const step = steps[index];
          const label = `step ${index + 1}`;
          expect(Math.abs(step.loss - expected.loss), `${label} loss`).toBeLessThan(2e-5);
          expect(
            Math.abs(step.gradNorm - expected.grad_norm) / expected.grad_norm,
            `${label} grad norm`,
          ).toBeLessThan(1e-4);
          expect(step.learningRate).toBeCloseTo(expected.learning_rate, 12);
          // The adapter saved in checkpoint-<step>: every LoRA tensor after that step's update.
          const saved = readSafetensorsBytes(
            await storage.readFile(`checkpoint-${index + 1}/adapter_model.safetensors`),
          );
          const byName = new Map(saved.tensors.map((t) => [t.name, t]));
          expect([...byName.keys()].sort()).toEqual(Object.keys(expected.lora).sort());
          for (const [name, values] of Object.entries(expected.lora)) {
            const tensor = byName.get(name)!;
            const actual = new Float32Array(
              tensor.data.buffer,
              tensor.data.byteOffset,
              tensor.data.byteLength / 4,
            );
            expectClose(actual, values, { atol: 2e-6, label: `${label} ${name}` });
          }
        }
        // Clipping acted (PyTorch's norms are above max_grad_norm) and the loss fell.
        expect(golden.steps.every((s) => s.grad_norm > golden.settings.max_grad_norm)).toBe(true);
        expect(steps[2].loss).toBeLessThan(steps[0].loss);
      } finally {
        model.dispose();
      }
    },
  );
});
