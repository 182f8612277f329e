/**
 * `webtune train CONFIG`: reads a LLaMA-Factory config, loads the model and data through the
 * packages, runs @webtune/train's loop with a dashboard, and writes output_dir. The training
 * itself (loop, losses, checkpoints, diagnostics) belongs to the packages; this file wires and
 * renders.
 */
import { resolve } from 'node:path';
import { describeBaseFormat } from '@webtune/nn';
import {
  BROWSER_TAB_BUDGET,
  baseFormatReason,
  CONFIG_KEYS,
  REQUIRED_KEYS,
  type RunPlan,
} from '@webtune/train';
import { openDevice, readModelConfig } from '../model-loading.js';
import {
  formatMemoryPlan,
  memoryBudget,
  trainingCheckpointing,
  trainingMemoryPlan,
} from '../train/base-precision.js';
import { configToYaml, planFromCommandLine } from '../train/config.js';
import { createDashboard } from '../train/dashboard.js';
import { runTraining } from '../train/run-training.js';
import { bold, dim, EXIT, UsageError, yellow } from '../ui.js';

export const trainHelp = `webtune train CONFIG [key=value ...] [--key value ...] [--dry-run] [--plain]

Fine-tunes a model from a LLaMA-Factory config (YAML or JSON), as \`llamafactory-cli train\` does.
Keys are LLaMA-Factory's; any key can be overridden after the file, as key=value
(learning_rate=1e-4 max_steps=20) or --key value. Every problem of a config is listed at once:
an unknown key names the nearest known key; a LLaMA-Factory feature webtune lacks is an error
saying so; keys without effect here (bf16, report_to, ...) are accepted with a note. do_train:
false skips training (do_eval and do_predict still run on the model as loaded).

Writes into output_dir: the adapter (adapter_config.json, adapter_model.safetensors) or the model,
tokenizer files, trainer_log.jsonl, training_args.yaml (the resolved config), training_loss.svg,
all_results.json, checkpoint-N folders every save_steps, and with do_predict
generated_predictions.jsonl. Ctrl-C saves a checkpoint at the end of the step and exits (130);
resume with --resume_from_checkpoint true.

Supported: stage pt | sft | dpo | kto | rm | ppo (reward_model from a stage rm run); finetuning_type
lora (use_dora, use_rslora, pissa_init with pissa_convert, loraplus_lr_ratio) | freeze | full;
use_dft_loss; train_from_scratch for model folders without weights; do_predict (greedy answers to
eval_dataset before and after training, with the count of exact matches).

Options:
  --dry-run    print the resolved config and exit
  --plain      plain log lines even on a terminal

Examples:
  webtune train examples/quickstart.yaml
  webtune train my_lora_sft.yaml learning_rate=2e-4 num_train_epochs=1
  webtune train my_lora_sft.yaml --resume_from_checkpoint true
  webtune train config.json --output_dir saves/run2 --overwrite_output_dir true

Config keys (LLaMA-Factory names; * = required):
${Object.entries(CONFIG_KEYS)
  .filter(([, spec]) => spec.status === 'supported')
  .map(
    ([key, spec]) =>
      `  ${(REQUIRED_KEYS as readonly string[]).includes(key) ? '*' : ' '}${key}${spec.default !== undefined && spec.default !== null ? ` (default ${spec.default})` : ''}`,
  )
  .join('\n')}`;

const CLI_FLAGS = new Set(['dry-run', 'plain']);

/**
 * The memory plan of a dry run, for a local model folder: against WebGPU's default limits (128 MiB
 * per binding, 256 MiB per buffer) and WEBTUNE_MEMORY_BUDGET, else a browser tab's budget.
 */
async function printMemoryPlan(run: RunPlan): Promise<void> {
  const v = run.config as Record<string, unknown>;
  const config = await readModelConfig(run.config.model_name_or_path);
  if (!config) {
    console.log(dim('memory plan: needs a local model folder with config.json'));
    return;
  }
  const plan = trainingMemoryPlan(run, config, {
    maxBufferSize: 256 * 1024 ** 2,
    maxStorageBufferBindingSize: 128 * 1024 ** 2,
    budgetBytes: memoryBudget(null) ?? BROWSER_TAB_BUDGET,
  });
  console.log(`\n${bold(`memory plan (base ${describeBaseFormat(run.baseFormat)})`)}`);
  console.log(dim(`base precision from ${baseFormatReason(run.config)}`));
  for (const line of formatMemoryPlan(plan, trainingCheckpointing(v))) console.log(line);
}

export async function trainCommand(argv: string[]): Promise<number> {
  const [configPath, ...rest] = argv;
  if (!configPath || configPath.startsWith('--'))
    throw new UsageError('missing CONFIG (a YAML or JSON file)');
  const flags = new Set(
    rest.filter((a) => a.startsWith('--') && CLI_FLAGS.has(a.slice(2))).map((a) => a.slice(2)),
  );
  const plan = planFromCommandLine(
    configPath,
    rest.filter((a) => !(a.startsWith('--') && CLI_FLAGS.has(a.slice(2)))),
  );
  console.log(bold(`webtune train ${configPath}`));
  console.log(dim(configToYaml(plan, true).trimEnd()));
  for (const note of plan.notes) console.log(yellow(`note: ${note}`));
  if (flags.has('dry-run')) {
    console.log(`\n${bold('resolved config')}\n${configToYaml(plan)}`);
    await printMemoryPlan(plan);
    return 0;
  }

  const live = Boolean(process.stdout.isTTY) && !flags.has('plain') && !process.env.CI;
  const dashboard = createDashboard({ live, loggingSteps: plan.config.logging_steps });
  const abort = new AbortController();
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts === 1) {
      abort.abort();
      dashboard.note('stopping: a checkpoint is saved after this step (Ctrl-C again quits at once)');
    } else {
      process.stderr.write('\nwebtune train: quit without saving\n');
      process.exit(EXIT.interrupted);
    }
  };
  const device = await openDevice();
  let training = false;
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  try {
    const outcome = await runTraining(plan, {
      device,
      source: configPath,
      signal: abort.signal,
      log: (line) => (training ? dashboard.note(line) : console.log(line)),
      onEvent: (event) => {
        if (event.type === 'train-start') training = true;
        dashboard.handle(event);
        if (event.type === 'train-end') {
          dashboard.close();
          training = false;
        }
      },
    });
    if (outcome.reason === 'stopped') {
      throw new UsageError(
        `stopped at step ${outcome.steps}; ${outcome.lastCheckpoint ? `checkpoint ${resolve(outcome.outputDir, outcome.lastCheckpoint)} saved; resume with: webtune train ${configPath} --resume_from_checkpoint true` : 'no checkpoint was saved'}`,
        EXIT.interrupted,
      );
    }
    if (outcome.reason === 'non-finite') {
      throw new UsageError(
        `stopped: ${outcome.problem ?? 'the loss is not a finite number'}${outcome.lastCheckpoint ? ` (last good checkpoint: ${outcome.lastCheckpoint})` : ''}`,
        EXIT.failure,
      );
    }
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
    device.destroy();
  }
}
