/*
 * `stage: ppo`: the policy (this run's LoRA adapter on model_name_or_path) answers the prompts of
 * the SFT rows, the reward model of a stage rm run scores the answers, and @webtune/train's
 * trainPpo updates the adapter and its value head. Writes the adapter, value_head.safetensors,
 * trainer_log.jsonl (loss, reward), training_loss.svg (the reward curve) and all_results.json.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EncodedExample } from '@webtune/data';
import { directorySink, directorySource } from '@webtune/nn/node';
import { loadAdapter, saveAdapter } from '@webtune/peft';
import {
  apiRewardScorer,
  loadValueHead,
  type RunPlan,
  rewardScorer,
  saveValueHead,
  trainableCausalLM,
  trainablePeftModel,
  trainPpo,
} from '@webtune/train';
import { directoryStorage, resumeRequestFor } from '@webtune/train/node';
import { type LoadedModel, loadModel } from '../model-loading.js';
import { dim, green, UsageError } from '../ui.js';
import { lossCurveSvg } from './loss-svg.js';
import type { PreparedRun } from './prepare-run.js';
import type { TrainingOutcome } from './run-training.js';

/** The prompt of an SFT row: its tokens up to the first trained label. */
function promptOf(row: { inputIds: ArrayLike<number>; labels: ArrayLike<number> }): number[] {
  const labels = Array.from(row.labels);
  const first = labels.findIndex((label) => label !== -100);
  return Array.from(row.inputIds).slice(0, first < 0 ? labels.length : first);
}

/** Loads the reward model of a stage rm run: base + its adapter (lora), or its own folder (full). */
async function loadRewardModel(loaded: LoadedModel, plan: RunPlan) {
  if (plan.task.type !== 'ppo') throw new Error('runPpo: not a PPO plan');
  const folder = resolve(plan.task.rewardModel);
  if (!existsSync(folder)) throw new UsageError(`reward_model: "${plan.task.rewardModel}" does not exist`);
  const device = loaded.model.device;
  const rewardLoaded =
    plan.task.rewardModelType === 'full'
      ? await loadModel(device, folder, {})
      : await loadModel(device, plan.config.model_name_or_path, { baseFormat: plan.baseFormat });
  let hiddenStates = trainableCausalLM(rewardLoaded.model, { trainable: [] }).hiddenStates;
  if (plan.task.rewardModelType === 'lora') {
    const source = directorySource(folder);
    try {
      const peft = await loadAdapter(rewardLoaded.model, source);
      peft.eval();
      hiddenStates = trainablePeftModel(peft).hiddenStates;
    } finally {
      await source.close?.();
    }
  }
  const headSource = directorySource(folder);
  try {
    const head = await loadValueHead(device, headSource, {
      hiddenSize: rewardLoaded.model.config.hiddenSize,
    });
    return { model: rewardLoaded.model, hiddenStates, head };
  } finally {
    await headSource.close?.();
  }
}

export async function runPpo(
  loaded: LoadedModel,
  plan: RunPlan,
  run: PreparedRun,
  context: { outputDir: string; log: (line: string) => void },
): Promise<TrainingOutcome> {
  const { outputDir, log } = context;
  if (plan.task.type !== 'ppo' || !run.peft) throw new Error('runPpo: stage ppo needs a LoRA policy');
  const { model, tokenizer } = loaded;
  const padTokenId = tokenizer.padTokenId ?? 0;
  const args = plan.trainingArguments;
  // api: a reward server scores the decoded texts; otherwise a stage rm model on this device.
  const reward =
    plan.task.rewardModelType === 'api'
      ? {
          model: null,
          scorer: apiRewardScorer({
            url: plan.task.rewardModel,
            decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: false }),
          }),
        }
      : await (async () => {
          const local = await loadRewardModel(loaded, plan);
          return {
            model: local.model,
            scorer: rewardScorer({ device: model.device, hiddenStates: local.hiddenStates }, local.head, {
              padTokenId,
              batchSize: args.perDeviceTrainBatchSize ?? 1,
            }),
          };
        })();
  log(`reward model: ${plan.task.rewardModel} (${plan.task.rewardModelType})`);
  // streaming is refused for stage ppo (resolve-config), so the rows are a list.
  const queries = (run.train as EncodedExample[]).map((row) => promptOf(row as never));
  const stopTokens = run.prompts?.stopTokenIds() ?? model.config.eosTokenIds;
  const started = performance.now();
  try {
    const result = await trainPpo({
      model,
      trainable: run.trainable,
      reward: reward.scorer,
      queries,
      // save_steps checkpoints; resume_from_checkpoint continues one exactly (ppo-checkpoint.ts).
      args: {
        ...args,
        resumeFromCheckpoint: resumeRequestFor(outputDir, plan.config.resume_from_checkpoint),
      },
      ppo: {
        epochs: plan.task.epochs,
        bufferSize: plan.task.bufferSize,
        target: plan.task.target,
        scoreNorm: plan.task.scoreNorm,
        whitenRewards: plan.task.whitenRewards,
      },
      // PPO needs answers sampled from the policy: temperature, top_p and top_k apply whatever
      // do_sample says (LLaMA-Factory samples by default; greedy answers would be off-policy).
      generation: {
        maxNewTokens: plan.config.max_new_tokens,
        temperature: plan.config.temperature,
        topP: plan.config.top_p,
        topK: plan.config.top_k,
        stopTokens,
      },
      padTokenId,
      logitsChunkRows: plan.logitsChunkRows,
      storage: directoryStorage(outputDir),
      onStep: (step) =>
        log(
          `step ${step.step}/${step.totalSteps} reward ${step.reward.toFixed(4)} loss ${step.loss.toFixed(4)} kl ${step.kl.toFixed(3)} kl_coef ${step.klCoefficient.toFixed(4)} answer ${step.responseLength.toFixed(1)} tokens`,
        ),
    });
    const runtime = (performance.now() - started) / 1000;
    const sink = directorySink(outputDir);
    await saveAdapter(run.peft, sink, { baseModelNameOrPath: plan.baseModel });
    await saveValueHead(result.valueHead, sink);
    for (const [name, bytes] of Object.entries(loaded.tokenizerFiles))
      await writeFile(join(outputDir, name), bytes);
    const rewards = result.steps.map((s) => s.reward);
    await writeFile(
      join(outputDir, 'training_loss.svg'),
      lossCurveSvg({
        train: result.steps.map((s) => ({ step: s.step, loss: s.reward })),
        eval: [],
        title: `PPO reward: ${plan.config.model_name_or_path}`,
      }),
    );
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
    await writeFile(
      join(outputDir, 'all_results.json'),
      `${JSON.stringify(
        {
          epoch: Number(
            (
              result.steps.length /
              Math.max(
                1,
                Math.ceil(
                  queries.length /
                    ((args.perDeviceTrainBatchSize ?? 1) *
                      (args.gradientAccumulationSteps ?? 1) *
                      plan.task.bufferSize),
                ),
              )
            ).toFixed(4),
          ),
          train_loss: mean(result.steps.map((s) => s.loss)),
          reward_first: rewards[0] ?? null,
          reward_last: rewards.at(-1) ?? null,
          train_runtime: Number(runtime.toFixed(3)),
          train_steps: result.steps.length,
          end_reason: 'completed',
          peak_memory_bytes: model.device.memory().peakBytes,
        },
        null,
        2,
      )}\n`,
    );
    log(
      `reward ${rewards[0]?.toFixed(4)} -> ${rewards.at(-1)?.toFixed(4)} over ${rewards.length} PPO steps in ${runtime.toFixed(1)}s`,
    );
    log(green(`done: ${outputDir}`));
    log(dim(`files:   ${(await readdir(outputDir)).sort().join(', ')}`));
    const lastStep = result.steps.at(-1)?.step ?? 0;
    return { reason: 'completed', steps: lastStep, outputDir, lastCheckpoint: result.lastCheckpoint };
  } finally {
    reward.model?.dispose();
  }
}
