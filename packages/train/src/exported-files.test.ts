import { memoryFileSource } from '@webtune/nn';
import { getPeftModel, loadAdapter, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from './checkpoint/training-storage.js';
import type { TrainingArguments } from './config/training-arguments.js';
import { trainablePeftModel } from './model/trainable-model.js';
import { supervisedTask } from './tasks/sft-task.js';
import { patternRows, tinyLlama } from './testing/toy-model.js';
import { train } from './trainer.js';

// The adapter the trainer writes into checkpoints and the output folder names the run's base model.

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const ARGS: TrainingArguments = {
  perDeviceTrainBatchSize: 2,
  maxSteps: 2,
  saveSteps: 2,
  learningRate: 0.05,
  lrSchedulerType: 'constant',
};

/** Trains LoRA for two steps on a fresh tiny Llama; returns the output folder and the base. */
async function run(args: TrainingArguments, configBase: string | null = null) {
  const model = tinyLlama(device, 1);
  const peft = await getPeftModel(
    model,
    loraConfig({ r: 2, lora_alpha: 4, target_modules: ['q_proj'], base_model_name_or_path: configBase }),
    { seed: 9 },
  );
  const storage = memoryStorage();
  const result = await train({
    model: trainablePeftModel(peft),
    task: supervisedTask(),
    train: patternRows(4, 6),
    args,
    storage,
  });
  expect(result.reason).toBe('completed');
  const configOf = (path: string) =>
    JSON.parse(new TextDecoder().decode(storage.files.get(path)!)) as Record<string, unknown>;
  return { storage, model, configOf };
}

describe('adapter files the trainer exports', () => {
  it("write the run's model_name_or_path as base_model_name_or_path, and load back", async () => {
    const { storage, model, configOf } = await run({ ...ARGS, modelNameOrPath: 'stories260K-hf' });
    expect(configOf('adapter_config.json')).toMatchObject({
      base_model_name_or_path: 'stories260K-hf',
      peft_type: 'LORA',
      r: 2,
    });
    expect(configOf('checkpoint-2/adapter_config.json').base_model_name_or_path).toBe('stories260K-hf');
    // The exported folder is a PEFT adapter for the same base.
    const base = tinyLlama(device, 1);
    const files = new Map([...storage.files].filter(([name]) => !name.includes('/')));
    const loaded = await loadAdapter(base, memoryFileSource(files, 'output'));
    expect(loaded.config().base_model_name_or_path).toBe('stories260K-hf');
    base.dispose();
    model.dispose();
  });

  it("without a model_name_or_path the adapter config's own base is kept", async () => {
    const { model, configOf } = await run(ARGS, 'from-the-lora-config');
    expect(configOf('adapter_config.json').base_model_name_or_path).toBe('from-the-lora-config');
    model.dispose();
  });
});
