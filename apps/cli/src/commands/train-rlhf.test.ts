import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, REPO_ROOT, trainerLog, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';

/** `webtune train|export <example> key=value...` from the repository's examples. */
const run = (command: string, example: string, overrides: Record<string, string>) =>
  webtune([
    command,
    join(REPO_ROOT, example),
    ...Object.entries(overrides).map(([key, value]) => `${key}=${value}`),
  ]);

// LLaMA-Factory's RLHF chain with its example configs (model and data swapped for the fixtures):
// SFT with LoRA, merge, a LoRA reward model on the merged model, then PPO against it.
describe.skipIf(!requireFixtures(STORIES, DATASETS))('webtune train: SFT -> reward model -> PPO', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-rlhf-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('runs the chain end to end; PPO logs reward and loss and saves the adapter and value head', async () => {
    const data = { dataset_dir: fixturePath(DATASETS) };
    const sft = await run('train', 'examples/train_lora/stories260k_lora_sft.yaml', {
      ...data,
      model_name_or_path: fixturePath(STORIES),
      output_dir: join(folder, 'sft'),
      max_samples: '8',
      max_steps: '2',
    });
    expect(errorLines(sft.stderr)).toEqual([]);
    expect(sft.code).toBe(0);
    const merged = await run('export', 'examples/merge_lora/stories260k_lora_sft.yaml', {
      model_name_or_path: fixturePath(STORIES),
      adapter_name_or_path: join(folder, 'sft'),
      export_dir: join(folder, 'sft-merged'),
    });
    expect(merged.code).toBe(0);
    const rm = await run('train', 'examples/train_lora/stories260k_lora_reward.yaml', {
      ...data,
      model_name_or_path: join(folder, 'sft-merged'),
      output_dir: join(folder, 'rm'),
      max_samples: '8',
      max_steps: '4',
    });
    expect(errorLines(rm.stderr)).toEqual([]);
    expect(rm.code).toBe(0);
    expect(existsSync(join(folder, 'rm', 'value_head.safetensors'))).toBe(true);

    const ppo = await run('train', 'examples/train_lora/stories260k_lora_ppo.yaml', {
      ...data,
      model_name_or_path: join(folder, 'sft-merged'),
      reward_model: join(folder, 'rm'),
      output_dir: join(folder, 'ppo'),
      max_samples: '4',
      max_steps: '3',
      max_new_tokens: '6',
      ppo_epochs: '2',
    });
    expect(errorLines(ppo.stderr)).toEqual([]);
    expect(ppo.code).toBe(0);
    expect(ppo.stdout).toMatch(/reward model: .*rm \(lora\)/);
    const log = trainerLog(join(folder, 'ppo'));
    expect(log.map((row) => row.current_steps)).toEqual([1, 2, 3]);
    for (const key of ['loss', 'reward', 'lr', 'ppo/kl', 'ppo/kl_coef'])
      expect(typeof log[0][key], key).toBe('number');
    // Step 1 answers come from the policy before any update: it equals the reference.
    expect(log[0]['ppo/kl']).toBeCloseTo(0, 3);
    for (const file of ['adapter_model.safetensors', 'value_head.safetensors', 'all_results.json'])
      expect(existsSync(join(folder, 'ppo', file)), file).toBe(true);
    const config = JSON.parse(readFileSync(join(folder, 'ppo', 'adapter_config.json'), 'utf8'));
    expect(config.base_model_name_or_path).toBe(join(folder, 'sft-merged'));
  });

  it('refuses PPO without a reward model, and an api reward model that is not a URL', async () => {
    const base = {
      model_name_or_path: fixturePath(STORIES),
      output_dir: join(folder, 'x'),
      dataset_dir: fixturePath(DATASETS),
    };
    const missing = await run('train', 'examples/train_lora/stories260k_lora_ppo.yaml', {
      ...base,
      reward_model: '',
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/stage ppo needs reward_model/);
    const api = await run('train', 'examples/train_lora/stories260k_lora_ppo.yaml', {
      ...base,
      reward_model_type: 'api',
    });
    expect(api.code).toBe(2);
    expect(api.stderr).toMatch(
      /reward_model_type api needs reward_model to be the reward server's http\(s\) URL/,
    );
  });
});
