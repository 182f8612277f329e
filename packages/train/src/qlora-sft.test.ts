import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BaseFormat } from '@webtune/nn';
import { loadModelDirectory } from '@webtune/nn/node';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TrainingArguments } from './config/training-arguments.js';
import type { SupervisedRow } from './data/rows.js';
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

// QLoRA: LoRA in f32 on a frozen stories260K base held in Q4_0 / Q8_0 blocks.
describe.skipIf(!requireFixtures(STORIES, DATASETS))('QLoRA SFT on stories260K', () => {
  let device: Device;
  let rows: SupervisedRow[];
  const ASKED = [2, 3, 5, 7];

  beforeAll(async () => {
    device = await createDevice();
    const { model, tokenizer } = await loadStories(device);
    model.dispose();
    rows = await identityRows(tokenizer, { rows: 16, cutoffLen: 96 });
  });
  afterAll(() => device?.destroy());
  afterEach(() => clearTape());

  const load = async (baseFormat: BaseFormat) => {
    const { model, tokenizer } = await loadModelDirectory(device, fixturePath(STORIES), { baseFormat });
    return { model, tokenizer: tokenizer! };
  };
  const lora = () => loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' as never });
  const BASE: TrainingArguments = {
    perDeviceTrainBatchSize: 4,
    gradientAccumulationSteps: 2,
    learningRate: 1e-2,
    lrSchedulerType: 'cosine',
    warmupRatio: 0.1,
    seed: 3,
  };

  it('4-bit base: the loss falls by half as with f32 LoRA and the answers then name the assistant', async () => {
    const { model, tokenizer } = await load('q4_0');
    const peft = await getPeftModel(model, lora(), { seed: 1 });
    const result = await train({
      model: trainablePeftModel(peft),
      task: supervisedTask(),
      train: rows,
      args: { ...BASE, maxSteps: 36 },
    });
    const first = result.losses[0];
    const last = result.losses.slice(-3).reduce((a, b) => a + b) / 3;
    console.log(`QLoRA q4_0 SFT losses: ${result.losses.map((l) => l.toFixed(3)).join(' ')}`);
    expect(last).toBeLessThan(first / 2);
    peft.eval();
    const after = await Promise.all(ASKED.map((i) => greedyAnswer(model, tokenizer, promptOf(rows[i]))));
    for (const answer of after) expect(answer).toContain(IDENTITY.name);
    model.dispose();
    // 36 steps: about 2 minutes on lavapipe when the machine is quiet.
  }, 600_000);

  it('8-bit base: resume from a checkpoint repeats the uninterrupted run exactly', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'webtune-qlora-'));
    const args: TrainingArguments = { ...BASE, maxSteps: 4, saveSteps: 2 };
    const runOnce = async (
      extra: TrainingArguments,
      crashAtStep?: number,
      storage = directoryStorage(folder),
    ) => {
      const { model } = await load('q8_0');
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
      const reference = await runOnce({}, undefined, directoryStorage(join(folder, 'reference')));
      await expect(runOnce({}, 3)).rejects.toThrow('killed');
      const resumed = await runOnce({ resumeFromCheckpoint: true });
      expect(resumed.losses).toEqual(reference.losses.slice(2));
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('f16 base with its f16 token table and tied head: LoRA losses within 1e-3 of the f32 base, the classifier plain and chunked', async () => {
    const args: TrainingArguments = { ...BASE, gradientAccumulationSteps: 1, maxSteps: 3 };
    const losses = async (baseFormat: BaseFormat, chunkRows?: number) => {
      const { model } = await load(baseFormat);
      try {
        if (baseFormat === 'f16')
          expect(model.getSubmodule('model.embed_tokens').packedParameter('weight')?.format).toBe('f16');
        const peft = await getPeftModel(model, lora(), { seed: 1 });
        const result = await train({
          model: trainablePeftModel(peft),
          task: supervisedTask({ chunkRows }),
          train: rows,
          args,
        });
        return result.losses;
      } finally {
        model.dispose();
      }
    };
    const f32 = await losses('f32');
    for (const chunkRows of [undefined, 96]) {
      const half = await losses('f16', chunkRows);
      console.log(
        `f16 base (chunkRows ${chunkRows}): ${half.map((l, i) => (l - f32[i]).toExponential(2)).join(' ')}`,
      );
      expect(half).toHaveLength(3);
      for (const [i, loss] of half.entries()) expect(Math.abs(loss - f32[i])).toBeLessThan(1e-3);
    }
  });

  it('refuses full fine-tuning on a quantized base, naming the reason', async () => {
    const { model } = await load('q4_0');
    expect(() => trainableCausalLM(model)).toThrow(
      /full fine-tuning cannot train a quantized .*finetuning_type: lora/,
    );
    model.dispose();
  });
});
