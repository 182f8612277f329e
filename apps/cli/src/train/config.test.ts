import { describe, expect, it } from 'vitest';
import { UsageError } from '../ui.js';
import { configToYaml, isConfigPath, parseOverrides, planOf } from './config.js';

const BASE = { model_name_or_path: 'models/x', dataset: 'identity', output_dir: 'saves/x' };

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

// What the keys mean is @webtune/train's (src/plan/*.test.ts); these are the command line's parts.
describe('training config on the command line', () => {
  it('shows one problem on one line, several as a list', () => {
    expect(errorOf(() => planOf({ ...BASE, lerning_rate: 1e-4 }, 'a.yaml'))).toBe(
      'a.yaml: unknown config key "lerning_rate"; did you mean "learning_rate"?',
    );
    expect(errorOf(() => planOf({ ...BASE, lora_rank: 0, stage: 'ppo' }))).toMatch(
      /^the config has 2 problems:\n {2}- lora_rank must be at least 1, got 0\n {2}- stage ppo needs reward_model: the output_dir of a stage rm run$/,
    );
    // issue 19: a negative seed was accepted.
    expect(errorOf(() => planOf({ ...BASE, seed: -5 }))).toBe(
      'seed must be an integer in [0, 4294967295], got -5',
    );
  });

  it("reads overrides as llamafactory-cli's key=value and as --key value", () => {
    expect(
      parseOverrides([
        '--learning_rate',
        '1e-4',
        '--do_predict',
        '--lora_target=q_proj,v_proj',
        'template=qwen',
        'max_steps=3',
        '--max-samples',
        '5',
        'do_train=false',
      ]),
    ).toEqual({
      learning_rate: 1e-4,
      do_predict: true,
      lora_target: 'q_proj,v_proj',
      template: 'qwen',
      max_steps: 3,
      max_samples: 5,
      do_train: false,
    });
    expect(() => parseOverrides(['learning_rate'])).toThrow(/overrides look like learning_rate=1e-4/);
    expect(isConfigPath('examples/train_lora/llama3_lora_sft.yaml')).toBe(true);
    expect(isConfigPath('cfg.JSON')).toBe(true);
    expect(isConfigPath('--model')).toBe(false);
    expect(isConfigPath('models/x')).toBe(false);
  });

  it('writes the resolved config as YAML by section, lists as LLaMA-Factory writes them', () => {
    const plan = planOf({ ...BASE, lora_target: ['q_proj', 'v_proj'] });
    const yaml = configToYaml(plan);
    expect(yaml).toMatch(/### model\nmodel_name_or_path: models\/x/);
    expect(yaml).toMatch(/lora_target: q_proj,v_proj/);
    expect(yaml).toMatch(/### train\n/);
    expect(configToYaml(plan, true)).not.toMatch(/cutoff_len/);
  });
});
