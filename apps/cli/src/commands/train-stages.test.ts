import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, trainExample, trainerLog, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';

describe.skipIf(!requireFixtures(STORIES, DATASETS))(
  'webtune train: stages, methods and the second example',
  () => {
    let folder: string;
    const model = fixturePath(STORIES);
    // Four pairs of LLaMA-Factory's DPO demo, cut short: what the preference stages train on.
    const preferenceData = {
      dataset: 'dpo_en_demo',
      dataset_dir: fixturePath(DATASETS),
      template: 'default',
      do_predict: 'false',
      max_samples: '4',
      cutoff_len: '48',
    };

    beforeAll(() => {
      folder = mkdtempSync(join(tmpdir(), 'webtune-cli-stages-'));
    });
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    it('runs the Hugging Face model example unchanged but for the model and the run length', async () => {
      const out = join(folder, 'hf');
      const result = await trainExample(model, out, {
        num_train_epochs: '1',
        max_samples: '8',
        max_new_tokens: '4',
      });
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      // stories260K has no chat_template: LLaMA-Factory's choice, empty, stands in, and says so.
      expect(result.stdout).toMatch(
        /note: the tokenizer has no chat_template and no template is set: using "empty", as LLaMA-Factory/,
      );
      expect(result.stdout).toMatch(
        /answers matching eval_dataset: \d+\/8 \(\d+%\) before -> \d+\/8 \(\d+%\) after training/,
      );
      const predictions = readFileSync(join(out, 'generated_predictions.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(predictions).toHaveLength(8);
      expect(Object.keys(predictions[0])).toEqual(['prompt', 'label', 'predict', 'predict_before']);
      expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    });

    it('DPO with LoRA logs the rewards', async () => {
      const out = join(folder, 'dpo');
      const result = await trainExample(model, out, {
        stage: 'dpo',
        ...preferenceData,
        max_steps: '2',
        logging_steps: '1',
        per_device_train_batch_size: '2',
        gradient_accumulation_steps: '1',
        pref_beta: '0.2',
      });
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      const log = trainerLog(out);
      expect(log).toHaveLength(2);
      for (const key of ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins'])
        expect(typeof log[0][key], key).toBe('number');
      expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    });

    it('KTO with LoRA reads kto_tag labels and logs rewards, logps and kl', async () => {
      const out = join(folder, 'kto');
      const result = await trainExample(model, out, {
        stage: 'kto',
        ...preferenceData,
        dataset: 'kto_en_demo',
        max_samples: '8',
        max_steps: '2',
        logging_steps: '1',
        per_device_train_batch_size: '4',
        gradient_accumulation_steps: '1',
        kto_chosen_weight: '1.5',
      });
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      const log = trainerLog(out);
      expect(log).toHaveLength(2);
      // The reference is the model with its adapter off: at step 1 policy = reference.
      expect(log[0]['rewards/chosen']).toBeCloseTo(0, 4);
      for (const key of ['rewards/chosen', 'logps/chosen', 'kl'])
        expect(typeof log[0][key], key).toBe('number');
      expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    });

    it('reward modelling with LoRA writes the adapter and the value head, base recorded', async () => {
      const out = join(folder, 'rm');
      const result = await trainExample(model, out, {
        stage: 'rm',
        ...preferenceData,
        max_steps: '1',
        per_device_train_batch_size: '2',
      });
      expect(errorLines(result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      expect(existsSync(join(out, 'value_head.safetensors'))).toBe(true);
      const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
      expect(config.base_model_name_or_path).toBe(model);
    });

    it('full fine-tuning writes a model folder; pretraining on text works', async () => {
      const out = join(folder, 'full');
      const full = await trainExample(model, out, {
        finetuning_type: 'full',
        learning_rate: '1e-3',
        do_predict: 'false',
        max_samples: '8',
        max_steps: '2',
        logging_steps: '1',
      });
      expect(errorLines(full.stderr)).toEqual([]);
      expect(full.code).toBe(0);
      for (const file of ['config.json', 'model.safetensors', 'tokenizer.json'])
        expect(existsSync(join(out, file)), file).toBe(true);
      expect(
        (await webtune(['generate', '--model', out, '--prompt', 'Once', '--max-new-tokens', '4'])).code,
      ).toBe(0);

      const pt = join(folder, 'pt');
      const pretrain = await trainExample(model, pt, {
        stage: 'pt',
        dataset: fixturePath('pretrain/tinystories_sample_cs336.txt'),
        do_predict: 'false',
        cutoff_len: '64',
        max_steps: '2',
        logging_steps: '1',
        finetuning_type: 'freeze',
        freeze_trainable_layers: '1',
      });
      expect(errorLines(pretrain.stderr)).toEqual([]);
      expect(pretrain.code).toBe(0);
      expect(pretrain.stdout).toMatch(/freeze: \d+ parameter tensors train/);
      expect(trainerLog(pt)).toHaveLength(2);
    });
  },
);
