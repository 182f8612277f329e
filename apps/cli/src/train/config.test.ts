import { describe, expect, it } from 'vitest';
import { UsageError } from '../ui.js';
import { configToYaml, parseOverrides, resolveConfig } from './config.js';
import { CONFIG_KEYS, editDistance, nearestKey } from './config-keys.js';

const BASE = { model_name_or_path: 'models/x', dataset: 'identity', output_dir: 'saves/x' };

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).not.toContain('\n');
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('training config', () => {
  it('fills LLaMA-Factory defaults and keeps given values', () => {
    const { values, given } = resolveConfig({ ...BASE, lora_rank: 16, learning_rate: '1e-4' });
    expect(values.stage).toBe('sft');
    expect(values.finetuning_type).toBe('lora');
    expect(values.lora_alpha).toBe(32); // 2 x rank
    expect(values.learning_rate).toBe(1e-4); // strings that are numbers become numbers
    expect(values.cutoff_len).toBe(2048);
    expect(given.has('lora_rank')).toBe(true);
    expect(given.has('cutoff_len')).toBe(false);
  });

  it('names the nearest known key for an unknown one', () => {
    expect(errorOf(() => resolveConfig({ ...BASE, lerning_rate: 1e-4 }))).toMatch(
      /unknown config key "lerning_rate"; did you mean "learning_rate"\?/,
    );
    expect(errorOf(() => resolveConfig({ ...BASE, num_epochs: 3 }))).toMatch(
      /did you mean "num_train_epochs"/,
    );
    expect(errorOf(() => resolveConfig({ ...BASE, completely_made_up_thing: 1 }))).not.toMatch(
      /did you mean/,
    );
    expect(nearestKey('lora-rank')).toBe('lora_rank');
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('says so for known but unsupported features, and accepts their neutral values', () => {
    expect(errorOf(() => resolveConfig({ ...BASE, use_galore: true }))).toMatch(
      /use_galore: true is a LLaMA-Factory setting webtune does not support/,
    );
    expect(errorOf(() => resolveConfig({ ...BASE, stage: 'ppo' }))).toMatch(
      /stage: "ppo" is known to LLaMA-Factory but not supported by webtune; supported: pt, sft, rm, dpo/,
    );
    expect(errorOf(() => resolveConfig({ ...BASE, finetuning_type: 'oft' }))).toMatch(/not supported/);
    expect(() => resolveConfig({ ...BASE, quantization_bit: null, use_galore: false })).not.toThrow();
  });

  it('accepts keys without effect here with a note', () => {
    const { notes } = resolveConfig({
      ...BASE,
      tf32: true,
      report_to: 'none',
      ddp_timeout: 180000000,
      trust_remote_code: true,
    });
    expect(notes).toEqual([
      expect.stringMatching(/^tf32: true has no effect \(webtune trains in float32/),
      expect.stringMatching(/^ddp_timeout: 180000000 has no effect/),
      expect.stringMatching(/^trust_remote_code: true has no effect/),
    ]);
  });

  it('checks types, choices, ranges and required keys in one line', () => {
    expect(errorOf(() => resolveConfig({ ...BASE, lora_rank: 'eight' }))).toBe(
      'lora_rank must be an integer, got "eight"',
    );
    expect(errorOf(() => resolveConfig({ ...BASE, lora_rank: 0 }))).toBe(
      'lora_rank must be at least 1, got 0',
    );
    expect(errorOf(() => resolveConfig({ ...BASE, stage: 'rlhf' }))).toMatch(
      /stage must be one of pt, sft, rm, dpo, got "rlhf"/,
    );
    expect(errorOf(() => resolveConfig({ ...BASE, do_train: 'yes' }))).toMatch(
      /do_train must be true or false/,
    );
    expect(errorOf(() => resolveConfig({ model_name_or_path: 'm', dataset: 'd' }))).toMatch(
      /the config needs output_dir/,
    );
    expect(errorOf(() => resolveConfig({ ...BASE, lora_dropout: 1.5 }))).toMatch(
      /lora_dropout must be in \[0, 1\)/,
    );
    // issue 19: a negative seed was accepted.
    expect(errorOf(() => resolveConfig({ ...BASE, seed: -5 }))).toBe(
      'seed must be an integer in [0, 4294967295], got -5',
    );
  });

  it('reads command-line overrides as YAML scalars', () => {
    expect(
      parseOverrides([
        '--learning_rate',
        '1e-4',
        '--do_predict',
        '--lora_target=q_proj,v_proj',
        '--template',
        'qwen',
        '--max-steps',
        '3',
      ]),
    ).toEqual({
      learning_rate: 1e-4,
      do_predict: true,
      lora_target: 'q_proj,v_proj',
      template: 'qwen',
      max_steps: 3,
    });
    expect(() => parseOverrides(['learning_rate'])).toThrow(/overrides look like --learning_rate 1e-4/);
  });

  it('writes the resolved config as YAML by section', () => {
    const yaml = configToYaml(resolveConfig({ ...BASE, lora_target: ['q_proj', 'v_proj'] }));
    expect(yaml).toMatch(/### model\nmodel_name_or_path: models\/x/);
    expect(yaml).toMatch(/lora_target: q_proj,v_proj/);
    expect(yaml).toMatch(/### train\n/);
  });

  it('knows the keys the issue lists', () => {
    for (const key of 'model_name_or_path adapter_name_or_path stage finetuning_type lora_rank lora_alpha lora_dropout lora_target dataset dataset_dir template cutoff_len max_samples val_size learning_rate num_train_epochs max_steps per_device_train_batch_size gradient_accumulation_steps lr_scheduler_type warmup_ratio max_grad_norm logging_steps save_steps eval_steps output_dir overwrite_output_dir resume_from_checkpoint pref_beta pref_loss seed'.split(
      ' ',
    )) {
      expect(CONFIG_KEYS[key]?.status, key).toBe('supported');
    }
  });
});
