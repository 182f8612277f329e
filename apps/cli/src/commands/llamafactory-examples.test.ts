/**
 * LLaMA-Factory's own example configs (examples/llamafactory/, only the model and dataset paths
 * swapped for the repository's fixtures), each run through `webtune` as `llamafactory-cli` would run
 * it: train with max_steps=1, export, chat, eval. A config whose feature webtune lacks must be refused
 * before anything runs, with its reason. When a refused feature lands, flip its case to `runs`.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, REPO_ROOT, webtune } from '../testing/run-cli.js';

type Expectation = { runs: string[] } | { refused: RegExp };

interface ExampleCase {
  file: string;
  command: 'train' | 'export' | 'chat' | 'eval';
  /** Files (relative to the run folder) the run must leave, or the reason it must be refused. */
  expect: Expectation;
  /** After a refusal: run again with these overrides (the advice given), for the configs that follow. */
  retryWith?: string[];
  /** Exit code of a refusal (default 2: refused before anything runs). */
  code?: number;
  /** Over a minute on lavapipe: runs in CI (CI=true) or with WEBTUNE_SLOW_EXAMPLES=1. */
  slow?: boolean;
}

/**
 * Overrides of the run's length only, so the file stays fast: one step of one micro-batch over a few
 * rows; chat answers a few tokens (the swapped-in model has a 512-token context, the config asks 1024).
 */
const RUN_LENGTH: Record<ExampleCase['command'], string[]> = {
  train: ['max_steps=1', 'gradient_accumulation_steps=1', 'max_samples=8'],
  export: [],
  chat: ['max_new_tokens=16'],
  eval: [],
};
const SLOW = process.env.WEBTUNE_SLOW_EXAMPLES === '1' || Boolean(process.env.CI);

const SFT_ADAPTER = 'saves/llama3-8b/lora/sft';
/** In run order: later configs read what earlier ones wrote (the adapter, the reward model, the full model). */
export const EXAMPLES: ExampleCase[] = [
  {
    file: 'train_lora_llama3_lora_sft',
    command: 'train',
    expect: { runs: [`${SFT_ADAPTER}/adapter_model.safetensors`] },
  },
  {
    file: 'train_lora_llama3_lora_dpo',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/lora/dpo/adapter_model.safetensors'] },
  },
  {
    file: 'train_lora_llama3_lora_reward',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/lora/reward/value_head.safetensors'] },
  },
  {
    file: 'train_lora_llama3_lora_pretrain',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/lora/pretrain/adapter_model.safetensors'] },
  },
  {
    file: 'train_lora_llama3_lora_sft_ds3',
    command: 'train',
    expect: { runs: [`${SFT_ADAPTER}/adapter_model.safetensors`] },
  },
  {
    file: 'train_lora_llama3_lora_sft_ray',
    command: 'train',
    expect: { runs: ['tmp_dir/adapter_model.safetensors'] },
  },
  {
    file: 'train_lora_llama3_preprocess',
    command: 'train',
    expect: {
      refused:
        /tokenized_path: "saves\/llama3-8b\/dataset\/sft" is a LLaMA-Factory setting webtune does not support/,
    },
  },
  {
    file: 'train_qlora_llama3_lora_sft_otfq',
    command: 'train',
    expect: { runs: [`${SFT_ADAPTER}/adapter_model.safetensors`] },
  },
  // bf16 is LLaMA-Factory's mixed-precision switch: full tuning writes its base, so it stays f32.
  {
    file: 'train_full_llama3_full_sft',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/full/sft/model.safetensors'] },
  },
  {
    file: 'webui_training_args',
    command: 'train',
    expect: { runs: ['saves/Llama-3-8B-Instruct/lora/train_2025-06-01-10-00-00/adapter_model.safetensors'] },
  },
  {
    file: 'train_lora_llama3_lora_kto',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/lora/kto/adapter_model.safetensors'] },
  },
  // About 80 s on lavapipe (generation inside the loop): runs in CI or with WEBTUNE_SLOW_EXAMPLES=1.
  {
    file: 'train_lora_llama3_lora_ppo',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/lora/ppo/value_head.safetensors'] },
    slow: true,
  },
  // PiSSA rewrites the base (W - BA), so bf16 keeps it in f32; pissa_convert saves a plain LoRA.
  {
    file: 'pissa_llama3_lora_sft',
    command: 'train',
    expect: { runs: ['saves/llama3-8b/lora/sft/adapter_model.safetensors'] },
  },
  {
    file: 'loraplus_llama3_lora_sft',
    command: 'train',
    expect: { runs: [`${SFT_ADAPTER}/adapter_model.safetensors`] },
  },
  {
    file: 'dft_qwen2_full_sft',
    command: 'train',
    expect: { runs: ['saves/qwen2-1_5b/full/sft/model.safetensors'] },
  },
  {
    file: 'merge_lora_llama3_lora_sft',
    command: 'export',
    expect: { runs: ['output/llama3_lora_sft/model.safetensors'] },
  },
  {
    file: 'merge_lora_llama3_full_sft',
    command: 'export',
    expect: { runs: ['output/llama3_full_sft/model.safetensors'] },
  },
  { file: 'inference_llama3', command: 'chat', expect: { runs: [] } },
  { file: 'inference_llama3_lora_sft', command: 'chat', expect: { runs: [] } },
  { file: 'inference_llama3_full_sft', command: 'chat', expect: { runs: [] } },
  // 100 MMLU questions, 5-shot: about 80 s on lavapipe (it runs, exit 0).
  { file: 'train_lora_llama3_lora_eval', command: 'eval', expect: { runs: [] }, slow: true },
];

describe.skipIf(!requireFixtures('models/stories260K-hf', 'datasets/llamafactory'))(
  "LLaMA-Factory's example configs run unchanged (paths swapped)",
  () => {
    let folder: string;
    beforeAll(() => {
      folder = mkdtempSync(join(tmpdir(), 'webtune-llamafactory-examples-'));
      // The configs name repository paths (fixtures/..., examples/...); outputs land in the run folder.
      for (const name of ['fixtures', 'examples']) symlinkSync(join(REPO_ROOT, name), join(folder, name));
    });
    afterAll(() => rmSync(folder, { recursive: true, force: true }));

    it('has the 21 configs', () => {
      expect(EXAMPLES).toHaveLength(21);
      for (const example of EXAMPLES)
        expect(existsSync(join(REPO_ROOT, 'examples/llamafactory', `${example.file}.yaml`))).toBe(true);
    });

    for (const example of EXAMPLES) {
      const verb = 'refused' in example.expect ? 'is refused' : 'runs';
      const name = `${example.command} ${example.file} ${verb}`;
      it.skipIf(example.slow && !SLOW)(
        example.slow ? `${name} (slow: CI or WEBTUNE_SLOW_EXAMPLES=1)` : name,
        async () => {
          const config = join('examples/llamafactory', `${example.file}.yaml`);
          const run = (extra: string[]) =>
            webtune([example.command, config, ...RUN_LENGTH[example.command], ...extra], {
              cwd: folder,
              input: example.command === 'chat' ? 'Who are you?\n' : '',
            });
          const result = await run([]);
          if ('refused' in example.expect) {
            expect(result.code, result.stdout + result.stderr).toBe(example.code ?? 2);
            expect(result.stderr).toMatch(example.expect.refused);
            if (example.retryWith) expect((await run(example.retryWith)).code).toBe(0);
            return;
          }
          const problems = errorLines(result.stderr).filter((line) => !line.startsWith('note: '));
          expect(problems, result.stdout).toEqual([]);
          expect(result.code).toBe(0);
          for (const file of example.expect.runs) expect(existsSync(join(folder, file)), file).toBe(true);
        },
      );
    }
  },
);
