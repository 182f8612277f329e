import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelConfig } from '@webtune/nn';
import { bottleneckConfig, getPeftModel, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device, sizeClass } from '@webtune/tensors';
import { requireF16, requireFixtures } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints } from './checkpoint/checkpoint.js';
import type { TrainingStorage } from './checkpoint/training-storage.js';
import type { TrainingArguments } from './config/training-arguments.js';
import type { SupervisedRow } from './data/rows.js';
import { planMemory } from './memory/memory-plan.js';
import { trainableCausalLM, trainablePeftModel } from './model/trainable-model.js';
import { directoryStorage } from './node.js';
import { supervisedTask } from './tasks/sft-task.js';
import {
  DATASETS,
  greedyAnswer,
  IDENTITY,
  identityRows,
  loadStories,
  promptOf,
  STORIES,
} from './testing/stories.js';
import { train } from './trainer.js';

/** The device as an adapter without shader-f16 would present it (every other member the same). */
function withoutF16(device: Device): Device {
  return new Proxy(device, {
    get: (target, property) => {
      if (property === 'hasF16') return false;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

// LoRA, Adapter and full fine-tuning of stories260K on identity.json with the placeholders filled.
describe.skipIf(!requireFixtures(STORIES, DATASETS))('SFT on stories260K', () => {
  let device: Device;
  let rows: SupervisedRow[];
  // Rows whose answer names the assistant: "I am Zorbik, ...", "You may refer to me as Zorbik, ...".
  const ASKED = [2, 3, 5, 7];

  beforeAll(async () => {
    device = await createDevice();
    const { model, tokenizer } = await loadStories(device);
    model.dispose();
    // The 16 English rows of identity.json (55-80 tokens each, none cut).
    rows = await identityRows(tokenizer, { rows: 16, cutoffLen: 96 });
  });
  afterAll(() => device?.destroy());
  afterEach(() => clearTape());

  const lora = () => loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' as never });
  const BASE: TrainingArguments = {
    perDeviceTrainBatchSize: 4,
    gradientAccumulationSteps: 2,
    learningRate: 1e-2,
    lrSchedulerType: 'cosine',
    warmupRatio: 0.1,
    seed: 3,
  };

  it('LoRA: the loss falls by at least half and greedy answers then contain the name (not before)', async () => {
    const { model, tokenizer } = await loadStories(device);
    const prompts = ASKED.map((i) => promptOf(rows[i]));
    const before = await Promise.all(prompts.map((prompt) => greedyAnswer(model, tokenizer, prompt)));
    for (const answer of before) expect(answer).not.toContain(IDENTITY.name);
    const peft = await getPeftModel(model, lora(), { seed: 1 });
    const result = await train({
      model: trainablePeftModel(peft),
      task: supervisedTask(),
      train: rows,
      args: { ...BASE, maxSteps: 36 },
    });
    const first = result.losses[0];
    const last = result.losses.slice(-3).reduce((a, b) => a + b) / 3;
    console.log(`LoRA SFT: loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    expect(last).toBeLessThan(first / 2);
    peft.eval();
    const after = await Promise.all(prompts.map((prompt) => greedyAnswer(model, tokenizer, prompt)));
    console.log('before:', before, 'after:', after);
    for (const answer of after) expect(answer).toContain(IDENTITY.name);
    model.dispose();
  });

  it('full fine-tuning and Adapter tuning each reduce the loss on the same data', async () => {
    for (const method of ['full', 'adapter'] as const) {
      const { model } = await loadStories(device);
      const trainable =
        method === 'full'
          ? trainableCausalLM(model)
          : trainablePeftModel(
              await getPeftModel(model, bottleneckConfig({ bottleneck_size: 16 }), { seed: 2 }),
            );
      const result = await train({
        model: trainable,
        task: supervisedTask(),
        train: rows,
        args: { ...BASE, maxSteps: 12, learningRate: method === 'full' ? 2e-3 : 1e-2 },
      });
      const first = result.losses[0];
      const last = result.losses.slice(-3).reduce((a, b) => a + b) / 3;
      console.log(`${method}: loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
      expect(last).toBeLessThan(first * 0.8);
      model.dispose();
    }
  });

  it('gradient checkpointing gives the same losses', async () => {
    const losses: number[][] = [];
    for (const gradientCheckpointing of [false, true]) {
      const { model } = await loadStories(device);
      const peft = await getPeftModel(model, lora(), { seed: 1 });
      const result = await train({
        model: trainablePeftModel(peft),
        task: supervisedTask(),
        train: rows,
        args: { ...BASE, maxSteps: 4, gradientCheckpointing },
      });
      losses.push(result.losses);
      model.dispose();
    }
    for (let i = 0; i < 4; i++) expect(losses[1][i]).toBeCloseTo(losses[0][i], 5);
  });

  it('f16 storage of the checkpointed layer inputs: losses within 1e-3 of f32, fewer bytes kept between layers', async (context) => {
    requireF16(context, device.hasF16);
    const runs: { losses: number[]; afterForward: number }[] = [];
    let layers = 0;
    let tokens = 0;
    for (const checkpointDtype of ['f32', 'f16'] as const) {
      const { model } = await loadStories(device);
      layers = model.config.numHiddenLayers;
      const peft = await getPeftModel(model, lora(), { seed: 1 });
      // What the tape holds once the first micro-batch's forward is done.
      const task = supervisedTask();
      const forward = task.forward;
      let afterForward = -1;
      task.forward = (...args) => {
        const before = device.memory().liveBytes;
        const result = forward(...args);
        if (afterForward < 0) {
          afterForward = device.memory().liveBytes - before;
          const batch = args[1].rows;
          tokens = batch.length * Math.max(...batch.map((row) => row.inputIds.length));
        }
        return result;
      };
      const result = await train({
        model: trainablePeftModel(peft),
        task,
        train: rows,
        args: { ...BASE, maxSteps: 4, gradientCheckpointing: true, checkpointDtype },
      });
      runs.push({ losses: result.losses, afterForward });
      model.dispose();
    }
    const [f32, f16] = runs;
    for (let i = 0; i < 4; i++) expect(Math.abs(f16.losses[i] - f32.losses[i])).toBeLessThan(1e-3);
    // Rounding happened: the runs are not bit-identical.
    expect(f16.losses.some((loss, i) => loss !== f32.losses[i])).toBe(true);
    // Between layers only the five layer inputs are kept, each now in f16: the saving is exactly
    // five times the difference of their pooled sizes (the embedding's f32 output and the last
    // layer's f16 output are freed by their casts' scopes).
    const perLayer = sizeClass(tokens * 64 * 4) - sizeClass(tokens * 64 * 2);
    expect(f32.afterForward - f16.afterForward).toBe(layers * perLayer);
    expect(layers).toBe(5);
  });

  it('f16 kept activations (no checkpointing): losses within 1e-3 of f32, the saving the plan counts; f32 without shader-f16', async (context) => {
    requireF16(context, device.hasF16);
    const runs: { losses: number[]; afterForward: number }[] = [];
    let config: ModelConfig | null = null;
    let batchShape = [0, 0];
    // The third run asks for f16 on an adapter stubbed without shader-f16: it must keep f32.
    for (const [activationDtype, hasF16] of [
      ['f32', true],
      ['f16', true],
      ['f16', false],
    ] as const) {
      const { model } = await loadStories(device);
      config = model.config;
      const peft = await getPeftModel(model, lora(), { seed: 1 });
      const task = supervisedTask();
      const forward = task.forward;
      let afterForward = -1;
      task.forward = (...args) => {
        const before = device.memory().liveBytes;
        const result = forward(...args);
        if (afterForward < 0) {
          afterForward = device.memory().liveBytes - before;
          const batch = args[1].rows;
          batchShape = [batch.length, Math.max(...batch.map((row) => row.inputIds.length))];
        }
        return result;
      };
      const trainable = trainablePeftModel(peft);
      const result = await train({
        model: hasF16 ? trainable : { ...trainable, device: withoutF16(device) },
        task,
        train: rows,
        args: { ...BASE, maxSteps: 4, activationDtype },
      });
      runs.push({ losses: result.losses, afterForward });
      model.dispose();
    }
    const [f32, f16, fallback] = runs;
    for (let i = 0; i < 4; i++) expect(Math.abs(f16.losses[i] - f32.losses[i])).toBeLessThan(1e-3);
    expect(f16.losses.some((loss, i) => loss !== f32.losses[i])).toBe(true);
    // What the tape keeps after the first forward shrinks by exactly the plan's activation term.
    const plan = (activationDtype: 'f32' | 'f16') =>
      planMemory({
        model: config!,
        baseFormat: 'f32',
        finetuningType: 'lora',
        lora: { r: 8, targetsPerLayer: 7 },
        batchSize: batchShape[0],
        sequenceLength: batchShape[1],
        gradientCheckpointing: false,
        activationDtype,
        limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: device.maxBindingBytes },
      }).activations;
    expect(f32.afterForward - f16.afterForward).toBe(plan('f32') - plan('f16'));
    expect(plan('f32') - plan('f16')).toBeGreaterThan(0);
    // Without shader-f16 the run is the f32 run, bit for bit.
    expect(fallback.losses).toEqual(f32.losses);
    expect(fallback.afterForward).toBe(f32.afterForward);
  });

  it('resume after a kill and after a crash while saving repeats the uninterrupted run (files on disk)', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'webtune-train-'));
    const args: TrainingArguments = { ...BASE, maxSteps: 6, saveSteps: 2, saveTotalLimit: 2 };
    const runOnce = async (
      storage: TrainingStorage | null,
      extra: TrainingArguments = {},
      crashAtStep?: number,
    ) => {
      const { model } = await loadStories(device);
      const peft = await getPeftModel(model, lora(), { seed: 1 });
      try {
        return await train({
          model: trainablePeftModel(peft),
          task: supervisedTask(),
          train: rows,
          args: { ...args, ...extra },
          storage,
          onEvent: (event) => {
            if (event.type === 'step-end' && event.step === crashAtStep) throw new Error('killed');
          },
        });
      } finally {
        model.dispose();
      }
    };
    try {
      const reference = await runOnce(null);
      // Killed in step 3, after checkpoint-2.
      const killed = directoryStorage(join(folder, 'killed'));
      await expect(runOnce(killed, {}, 3)).rejects.toThrow('killed');
      const resumed = await runOnce(killed, { resumeFromCheckpoint: true });
      expect(resumed.losses).toEqual(reference.losses.slice(2));
      expect(await listCheckpoints(killed)).toEqual(['checkpoint-4', 'checkpoint-6']);
      // The adapter files sit in each checkpoint and in the output folder (PEFT's layout).
      expect(await killed.exists('checkpoint-6/adapter_model.safetensors')).toBe(true);
      expect(await killed.exists('adapter_config.json')).toBe(true);

      // The disk fails while checkpoint-4 is written: checkpoint-2 survives and resumes.
      const crashing = directoryStorage(join(folder, 'crash'));
      let writes = 0;
      const failing: TrainingStorage = {
        ...crashing,
        writeFile: async (path, contents) => {
          if (path.includes('checkpoint-4') && ++writes === 2) throw new Error('disk full');
          return crashing.writeFile(path, contents);
        },
      };
      await expect(runOnce(failing)).rejects.toThrow('disk full');
      expect(await listCheckpoints(crashing)).toEqual(['checkpoint-2']);
      const recovered = await runOnce(crashing, { resumeFromCheckpoint: true });
      expect(recovered.losses).toEqual(reference.losses.slice(2));
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
