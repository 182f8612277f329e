import { prepareDatasetFromDirectory } from '@webtune/data/node';
import { backward, clearTape, createDevice, type Device, gradOf, requiresGrad } from '@webtune/tensors';
import { expectClose, fixturePath, requireFixtures } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SupervisedRow } from './data/rows.js';
import type { StepEndEvent } from './events.js';
import type { TrainableModel } from './model/trainable-model.js';
import { applyMethod, createTask } from './plan/apply-plan.js';
import { planRun } from './plan/run-plan.js';
import { logitsChunkRows } from './tasks/logits-chunks.js';
import { DATASETS, identityRows, loadStories, STORIES } from './testing/stories.js';
import { train } from './trainer.js';

// The run plan's logits chunking (logits_chunk_rows) as the CLI and the web app get it: planRun ->
// applyMethod -> createTask -> train(). stories260K's 512-token vocabulary never reaches the
// rule's 64 MiB, so the default is shown chunking on a device whose storage binding is 256 KiB
// (min(64 MiB, binding) / 2 KiB per row = at most 128 rows per chunk), the same rule a 32k or
// 152k vocabulary meets at its real size.

const SMALL_BINDING = 256 * 1024;
const BASE = {
  model_name_or_path: 'models/stories260K-hf',
  dataset: 'identity',
  output_dir: 'saves/x',
  per_device_train_batch_size: 4,
  max_steps: 3,
  learning_rate: 1e-2,
  lr_scheduler_type: 'constant',
  disable_shuffling: true,
  infer_dtype: 'float32',
};

describe.skipIf(!requireFixtures(STORIES, DATASETS))(
  'logits chunks in runs planned from a config (stories260K)',
  () => {
    let device: Device;
    let small: Device;
    let rows: SupervisedRow[];
    let tokenizer: Tokenizer;

    beforeAll(async () => {
      device = await createDevice();
      small = await createDevice({ maxBindingBytes: SMALL_BINDING });
      const loaded = await loadStories(device);
      loaded.model.dispose();
      tokenizer = loaded.tokenizer;
      rows = await identityRows(tokenizer, { rows: 12, cutoffLen: 96 });
    });
    afterAll(() => {
      device?.destroy();
      small?.destroy();
    });
    afterEach(() => clearTape());

    /** A model whose classifier records the rows of every call. */
    const counted = (model: TrainableModel, calls: number[]): TrainableModel => ({
      ...model,
      head: (hidden) => {
        calls.push(hidden.shape[0]);
        return model.head(hidden);
      },
    });

    async function run(on: Device, keys: Record<string, unknown>, data: unknown[] = rows) {
      const plan = planRun({ ...BASE, ...keys });
      const { model } = await loadStories(on);
      try {
        const applied = await applyMethod(model, plan.method, { seed: 1 });
        const calls: number[] = [];
        const losses: number[] = [];
        const task = createTask(plan.task, {
          padTokenId: 0,
          seed: plan.config.seed,
          logitsChunkRows: plan.logitsChunkRows,
        });
        await train({
          model: counted(applied.trainable, calls),
          task,
          train: data,
          args: { ...plan.trainingArguments, loggingSteps: 1 },
          onEvent: (event) => {
            if (event.type === 'step-end') losses.push((event as StepEndEvent).loss);
          },
        });
        const weights = await Promise.all(
          applied.trainable
            .trainableParameters()
            .map(async ([name, tensor]) => [name, (await tensor.toArray()) as Float32Array] as const),
        );
        return { plan, calls, losses, weights };
      } finally {
        model.dispose();
      }
    }

    /** Tokens of each micro-batch of the run (batches of 4 in order, padded to the longest row). */
    const microRows = () =>
      Array.from({ length: 3 }, (_, step) => {
        const batch = rows.slice(step * 4, step * 4 + 4);
        return batch.length * Math.max(...batch.map((row) => row.inputIds.length));
      });

    it('the default chunks where the rule says so, with the losses and LoRA weights of the unchunked run (1e-5)', async () => {
      const plain = await run(device, { logits_chunk_rows: 0 });
      const chunked = await run(small, {});
      expect(chunked.plan.logitsChunkRows).toBe('auto');
      // Off: one classifier call per micro-batch, over all its rows.
      expect(plain.calls).toEqual(microRows());
      // The default on the small binding: the rule's chunks (LoRA leaves the head frozen).
      const expected = microRows().flatMap((tokens) => {
        const chunk = logitsChunkRows('auto', {
          rows: tokens,
          vocabSize: 512,
          headFrozen: true,
          maxBindingBytes: small.maxBindingBytes,
        });
        // At most 128 rows (256 KiB of 2 KiB rows), 64-row multiples, as few chunks as 128 make.
        expect(chunk! % 64).toBe(0);
        expect(Math.ceil(tokens / chunk!)).toBe(Math.ceil(tokens / 128));
        const sizes: number[] = [];
        for (let start = 0; start < tokens; start += chunk!) sizes.push(Math.min(chunk!, tokens - start));
        return sizes;
      });
      expect(chunked.calls).toEqual(expected);
      expect(chunked.calls.length).toBeGreaterThan(3);
      expectClose(chunked.losses, plain.losses, { atol: 1e-5, label: 'losses' });
      expect(chunked.weights.map(([name]) => name)).toEqual(plain.weights.map(([name]) => name));
      // AdamW divides each gradient by its own running size, so a LoRA A gradient near zero (B
      // starts at zero) that differs in its last bits, here from the chunked head's rounding,
      // moves its weight differently. With the same head the two devices' weights are bitwise
      // equal; with chunks the worst element differed by 5.4e-6 (separate LoRA products) and
      // 1.0e-5 (lowRankLinear), every other element by less.
      chunked.weights.forEach(([name, values], i) => {
        expectClose(values, plain.weights[i][1], { atol: 2e-5, label: name });
      });
      // On the default device the same 512-token vocabulary stays whole.
      const whole = await run(device, { max_steps: 1 });
      expect(whole.calls).toEqual(microRows().slice(0, 1));
    });

    it('logits_chunk_rows: n sets the chunk; a bad value is refused naming the key', async () => {
      const five = await run(device, { logits_chunk_rows: 50, max_steps: 1 });
      const tokens = microRows()[0];
      expect(five.calls).toEqual([
        ...Array.from({ length: Math.floor(tokens / 50) }, () => 50),
        ...(tokens % 50 ? [tokens % 50] : []),
      ]);
      expect(() => planRun({ ...BASE, logits_chunk_rows: -1 })).toThrow(/logits_chunk_rows must be 0/);
      expect(() => planRun({ ...BASE, logits_chunk_rows: 'many' })).toThrow(
        /logits_chunk_rows must be an integer/,
      );
    });

    it.each([
      ['full fine-tuning', { finetuning_type: 'full' }],
      ['LoRA with lm_head in additional_target (modules_to_save)', { additional_target: 'lm_head' }],
    ])(
      'a trained head (%s) is chunked through checkpointing, with the gradients of the whole classifier',
      async (_, method) => {
        const gradients = async (on: Device, keys: Record<string, unknown>) => {
          const plan = planRun({ ...BASE, ...method, ...keys });
          const { model } = await loadStories(on);
          try {
            const applied = await applyMethod(model, plan.method, { seed: 1 });
            expect(applied.trainable.headFrozen?.()).toBe(false);
            const calls: number[] = [];
            const task = createTask(plan.task, {
              padTokenId: 0,
              seed: plan.config.seed,
              logitsChunkRows: plan.logitsChunkRows,
            });
            const batch = { rows: rows.slice(0, 4), ids: [0, 1, 2, 3] };
            const parameters = applied.trainable.trainableParameters();
            for (const [, tensor] of parameters) requiresGrad(tensor);
            const { loss } = task.forward(counted(applied.trainable, calls), batch, 100, {});
            backward(loss);
            const values = await Promise.all(
              parameters.map(async ([name, tensor]) => {
                const grad = gradOf(tensor);
                return [name, grad ? ((await grad.toArray()) as Float32Array) : null] as const;
              }),
            );
            for (const [, tensor] of parameters) requiresGrad(tensor, false);
            return { calls, values };
          } finally {
            model.dispose();
          }
        };
        const plain = await gradients(device, { logits_chunk_rows: 0 });
        const chunked = await gradients(small, {});
        // The trained head's threshold is min(256 MiB, binding): chunked on the small binding.
        expect(plain.calls).toEqual([microRows()[0]]);
        // Checkpointed: each chunk's classifier runs in forward and again in backward.
        const chunk = logitsChunkRows('auto', {
          rows: microRows()[0],
          vocabSize: 512,
          headFrozen: false,
          maxBindingBytes: small.maxBindingBytes,
        })!;
        expect(chunked.calls.length).toBe(2 * Math.ceil(microRows()[0] / chunk));
        expect(chunked.values.map(([name]) => name)).toEqual(plain.values.map(([name]) => name));
        chunked.values.forEach(([name, values], i) => {
          expect(values, name).not.toBeNull();
          expectClose(values!, plain.values[i][1]!, { atol: 1e-6, rtol: 1e-4, label: name });
        });
      },
    );

    it.each([
      ['dpo', 'dpo_en_demo'],
      ['kto', 'kto_en_demo'],
    ])(
      '%s: the default chunks the policy and reference log-probabilities, with the unchunked losses and weights',
      async (stage, dataset) => {
        const prepared = await prepareDatasetFromDirectory({
          stage: stage as 'dpo' | 'kto',
          datasets: [dataset],
          datasetDir: fixturePath(DATASETS),
          tokenizer,
          template: 'default',
          cutoffLen: 64,
          maxSamples: 4,
        });
        const keys = { stage, dataset, per_device_train_batch_size: 2, max_steps: 2, learning_rate: 5e-3 };
        const plain = await run(device, { ...keys, logits_chunk_rows: 0 }, prepared.train);
        const chunked = await run(small, keys, prepared.train);
        // Each micro-batch holds 4 sequences of up to 64 tokens: the 128-row chunks split them.
        expect(Math.max(...chunked.calls)).toBeLessThanOrEqual(128);
        expect(chunked.calls.length).toBeGreaterThan(plain.calls.length);
        expect(chunked.calls.reduce((a, b) => a + b, 0)).toBe(plain.calls.reduce((a, b) => a + b, 0));
        expectClose(chunked.losses, plain.losses, { atol: 1e-5, label: `${stage} losses` });
        // AdamW divides each gradient by its own running size, so a gradient near zero that
        // differs in its last bits moves its weight differently: within 5% of 2 steps of 5e-3
        // (the worst element measured 8.4e-5 with separate LoRA products, 3.9e-4 with
        // lowRankLinear, whose layers give bitwise the same weights on both devices when the
        // head is not chunked).
        chunked.weights.forEach(([name, values], i) => {
          expectClose(values, plain.weights[i][1], { atol: 5e-4, label: name });
        });
      },
    );
  },
);
