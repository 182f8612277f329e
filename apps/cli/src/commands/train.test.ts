import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { errorLines, startCli, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const DATASETS = 'datasets/llamafactory';

describe.skipIf(!requireFixtures(STORIES, DATASETS))('webtune train on stories260K', () => {
  let folder: string;
  let config: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-cli-train-'));
    config = join(folder, 'lora.yaml');
    writeFileSync(
      config,
      [
        `model_name_or_path: ${fixturePath(STORIES)}`,
        'stage: sft',
        'do_train: true',
        'finetuning_type: lora',
        'lora_rank: 8',
        'lora_target: all',
        'dataset: identity',
        `dataset_dir: ${fixturePath(DATASETS)}`,
        'template: default',
        'cutoff_len: 64',
        'max_samples: 20',
        'val_size: 0.2',
        'eval_strategy: steps',
        'eval_steps: 2',
        `output_dir: ${join(folder, 'out')}`,
        'logging_steps: 2',
        'save_steps: 2',
        'per_device_train_batch_size: 4',
        'learning_rate: 1.0e-2',
        'max_steps: 4',
        'tf32: true',
        'report_to: none',
        'seed: 3',
      ].join('\n'),
    );
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it('trains a LoRA adapter and writes the adapter, trainer_log.jsonl, the resolved config and a loss curve', async () => {
    const result = await webtune(['train', config, '--learning_rate', '5e-3']);
    expect(errorLines(result.stderr)).toEqual([]);
    expect(result.code).toBe(0);
    const out = join(folder, 'out');
    // The resolved config is printed, with notes for keys without effect.
    expect(result.stdout).toMatch(/### method\nstage: sft/);
    expect(result.stdout).toMatch(/note: tf32: true has no effect/);
    expect(result.stdout).toMatch(/training: 4 steps \(4 per epoch\), 16 train rows, 4 validation rows/);
    expect(result.stdout).toMatch(/^step 2\/4 \(50%\) loss \d/m);
    expect(result.stdout).toMatch(/^eval at step 2: eval_loss \d/m);
    for (const file of [
      'adapter_config.json',
      'adapter_model.safetensors',
      'tokenizer.json',
      'trainer_log.jsonl',
      'training_args.yaml',
      'training_loss.svg',
      'all_results.json',
      'checkpoint-2',
      'checkpoint-4',
    ]) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
    const log = readFileSync(join(out, 'trainer_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(log.filter((row) => row.eval_loss === undefined).map((row) => row.current_steps)).toEqual([2, 4]);
    for (const row of log)
      expect(row).toMatchObject({ total_steps: 4, loss: expect.any(Number), lr: expect.any(Number) });
    expect(log.some((row) => typeof row.eval_loss === 'number')).toBe(true);
    const resolved = parseYaml(readFileSync(join(out, 'training_args.yaml'), 'utf8'));
    expect(resolved).toMatchObject({
      learning_rate: 5e-3,
      lora_rank: 8,
      lora_alpha: 16,
      cutoff_len: 64,
      max_steps: 4,
    });
    const svg = readFileSync(join(out, 'training_loss.svg'), 'utf8');
    expect(svg.match(/class="train-loss" d="([^"]+)"/)![1].split(' ')).toHaveLength(4);
    const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(adapterConfig).toMatchObject({
      peft_type: 'LORA',
      r: 8,
      lora_alpha: 16,
      base_model_name_or_path: fixturePath(STORIES),
    });
    const results = JSON.parse(readFileSync(join(out, 'all_results.json'), 'utf8'));
    expect(results).toMatchObject({ train_steps: 4, end_reason: 'completed' });
    // The device's peak of live tensor bytes: at least the f32 model (stories260K: 1.1 MB).
    expect(results.peak_memory_bytes).toBeGreaterThan(1_000_000);
    // The adapter loads and generates.
    const generated = await webtune([
      'generate',
      '--model',
      fixturePath(STORIES),
      '--adapter',
      out,
      '--template',
      'default',
      '--prompt',
      'Who are you?',
      '--max-new-tokens',
      '8',
    ]);
    expect(generated.code).toBe(0);

    // A second run into the same folder is refused without overwrite_output_dir.
    const again = await webtune(['train', config]);
    expect(again.code).toBe(2);
    expect(errorLines(again.stderr)).toEqual([
      expect.stringMatching(/output_dir ".*out" exists and is not empty; set overwrite_output_dir: true/),
    ]);
  });

  it('resume_from_checkpoint with nothing to resume is refused (exit 2) and the folder is left as it was', async () => {
    // issue 19, case 1: a model folder used as output_dir, resumed with no checkpoint.
    const target = join(folder, 'model-copy');
    cpSync(fixturePath(STORIES), target, { recursive: true });
    const weights = readFileSync(join(target, 'model.safetensors'));
    const refused = await webtune([
      'train',
      config,
      '--output_dir',
      target,
      '--finetuning_type',
      'full',
      '--max_steps',
      '2',
      '--resume_from_checkpoint',
      'true',
    ]);
    expect(refused.code).toBe(2);
    expect(errorLines(refused.stderr)).toEqual([
      expect.stringMatching(
        /resume_from_checkpoint: true, but no valid checkpoint was found in .*model-copy; nothing was changed/,
      ),
    ]);
    expect(readFileSync(join(target, 'model.safetensors')).equals(weights)).toBe(true);
    const missing = await webtune([
      'train',
      config,
      '--output_dir',
      target,
      '--resume_from_checkpoint',
      'checkpoint-999',
    ]);
    expect(missing.code).toBe(2);
    expect(errorLines(missing.stderr)).toEqual([
      expect.stringMatching(
        /resume_from_checkpoint: "checkpoint-999" does not exist in .*model-copy \(it holds no checkpoints\)/,
      ),
    ]);
  });

  it('gives the intended one-line error for bad configs, missing files and bad datasets', async () => {
    const cases: [string[], number, RegExp][] = [
      [
        ['train', config, '--lerning_rate', '1e-4', '--dry-run'],
        2,
        /unknown config key "lerning_rate"; did you mean "learning_rate"\?/,
      ],
      [
        ['train', config, '--quantization_bit', '3', '--dry-run'],
        2,
        /quantization_bit: 3 is not supported; use 8 \(Q8_0 blocks\) or 4 \(Q4_0 blocks\)/,
      ],
      [
        ['train', config, '--quantization_bit', '4', '--finetuning_type', 'full', '--dry-run'],
        2,
        /quantization_bit: 4 with finetuning_type: full: a quantized base is frozen/,
      ],
      [
        ['train', config, '--pref_loss', 'bco', '--dry-run'],
        2,
        /pref_loss: "bco" is known to LLaMA-Factory but not supported by webtune/,
      ],
      [['train', config, '--lora_rank', 'big', '--dry-run'], 2, /lora_rank must be an integer, got "big"/],
      [
        ['train', config, '--logits_chunk_rows', '-2', '--dry-run'],
        2,
        /logits_chunk_rows must be 0 \(all logits at once\) or a number of rows per chunk, got -2/,
      ],
      [
        ['train', config, 'lr_scheduler_type=cosine_with_min_lr', '--dry-run'],
        2,
        /cosine_with_min_lr needs one of lr_scheduler_kwargs.min_lr or min_lr_rate/,
      ],
      [['train', join(folder, 'missing.yaml')], 2, /config file ".*missing.yaml" does not exist/],
      [['train'], 2, /missing CONFIG/],
      [
        [
          'train',
          config,
          '--output_dir',
          join(folder, 'o2'),
          '--model_name_or_path',
          join(folder, 'no-model'),
        ],
        1,
        /model folder ".*no-model" does not exist/,
      ],
      [
        ['train', config, '--output_dir', join(folder, 'o3'), '--dataset', 'no_such_dataset'],
        1,
        /no_such_dataset/,
      ],
    ];
    const broken = join(folder, 'broken.yaml');
    writeFileSync(broken, 'learning_rate: [1, 2\nstage: sft\n');
    cases.push([['train', broken], 2, /broken.yaml is not valid YAML/]);
    const badRows = join(folder, 'bad.jsonl');
    writeFileSync(badRows, '{"instruction": 1}\n{"output": "x"}\n');
    cases.push([
      ['train', config, '--output_dir', join(folder, 'o4'), '--dataset', badRows],
      1,
      /expected at least one valid row/,
    ]);
    for (const [args, code, message] of cases) {
      const result = await webtune(args);
      expect(result.code, args.join(' ')).toBe(code);
      const lines = errorLines(result.stderr);
      expect(lines, args.join(' ')).toEqual([expect.stringMatching(message)]);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('--dry-run prints the resolved config, defaults included, without training', async () => {
    const json = join(folder, 'config.json');
    writeFileSync(
      json,
      JSON.stringify({
        model_name_or_path: fixturePath(STORIES),
        dataset: 'identity',
        output_dir: join(folder, 'never'),
      }),
    );
    const result = await webtune(['train', json, '--dry-run']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/resolved config/);
    expect(result.stdout).toMatch(/lora_rank: 8\n/);
    expect(result.stdout).toMatch(/learning_rate: 0.00005\n/);
    // The memory plan of stories260K with LoRA r 8, batch 8 x 2048 tokens, checkpointed; the base is
    // f16 by default for LoRA (infer_dtype: auto), with the reason printed.
    expect(result.stdout).toMatch(
      /memory plan \(base f16 \(half precision, frozen\)\)\nbase precision from infer_dtype: auto \(f16: [^)]+\)\n {2}weights\s+[\d.]+ (KiB|MiB)\n/,
    );
    expect(result.stdout).toMatch(/predicted peak\s+[\d.]+ (MiB|GiB)/);
    // 16,384 tokens of a 512-token vocabulary: 32 MiB of logits, within the chunking rule's 64 MiB.
    expect(result.stdout).toMatch(/logits and their gradient \(16384 rows at once\)\s+64.0 MiB/);
    const chunked = await webtune(['train', json, '--logits_chunk_rows', '1024', '--dry-run']);
    expect(chunked.stdout).toMatch(/logits and their gradient \(1024 rows at once\)\s+4.0 MiB/);
    const pinned = await webtune(['train', json, 'infer_dtype=float32', '--dry-run']);
    expect(pinned.stdout).toMatch(/memory plan \(base f32\)\nbase precision from infer_dtype: float32\n/);
    const quantized = await webtune(['train', json, '--quantization_bit', '4', '--dry-run']);
    expect(quantized.stdout).toMatch(/memory plan \(base q4_0 \(quantized, frozen\)\)/);
    expect(existsSync(join(folder, 'never'))).toBe(false);
  });

  it('do_train: false does not train; do_eval evaluates the model as loaded (key=value overrides)', async () => {
    const out = join(folder, 'eval-only');
    const result = await webtune(['train', config, `output_dir=${out}`, 'do_train=false', 'do_eval=true']);
    expect(result.code).toBe(0);
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'trainer_log.jsonl'))).toBe(false);
    const results = JSON.parse(readFileSync(join(out, 'all_results.json'), 'utf8'));
    expect(results.eval_loss).toBeGreaterThan(0);
    expect(result.stdout).toMatch(/done \(no training, do_train: false\)/);
  });

  it('Ctrl-C saves a checkpoint and exits 130; --resume_from_checkpoint finishes the run', async () => {
    const out = join(folder, 'interrupted');
    const args = [
      'train',
      config,
      '--output_dir',
      out,
      '--max_steps',
      '16',
      '--logging_steps',
      '1',
      '--save_steps',
      '1000',
      '--eval_strategy',
      'no',
    ];
    const run = startCli(args);
    await run.waitFor(/^step 2\/16/m, 120_000);
    run.child.kill('SIGINT');
    const exit = await run.exited;
    expect(exit.code).toBe(130);
    const lines = errorLines(run.stderr());
    expect(lines).toEqual([
      expect.stringMatching(
        /stopped at step \d+; checkpoint .*checkpoint-\d+ saved; resume with: webtune train .* --resume_from_checkpoint true/,
      ),
    ]);
    const step = Number(lines[0].match(/stopped at step (\d+)/)![1]);
    expect(step).toBeLessThan(16);
    expect(existsSync(join(out, `checkpoint-${step}`))).toBe(true);
    const resumed = await webtune([...args, '--resume_from_checkpoint', 'true']);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`resumed from checkpoint-${step}`));
    const log = readFileSync(join(out, 'trainer_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(log.map((row) => row.current_steps)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
  });
});
