/*
 * Stage ppo in the tab, as `webtune train` runs it (apps/cli's run-ppo.ts): the policy is this
 * run's LoRA adapter on the loaded model; the reward model is a stage rm run of this browser (its
 * adapter on a second copy of the base, and its value_head.safetensors); @webtune/train's trainPpo
 * generates answers to the SFT rows' prompts, scores them and updates the adapter and a value head.
 * Each PPO step is reported as the trainer's step-end event, with PPO's figures as its metrics
 * (LLaMA-Factory's names: reward, ppo/kl, ppo/policy_loss, ppo/value_loss...), so the Train tab
 * charts them as any stage's. At the end the adapter and value head are written to the run's folder.
 */
import type { EncodedExample } from '@webtune/data';
import { memoryFileSource } from '@webtune/nn';
import { loadAdapter, type PeftModel, saveAdapter } from '@webtune/peft';
import {
  loadValueHead,
  type RunPlan,
  rewardScorer,
  saveValueHead,
  type TrainableModel,
  type TrainEndReason,
  type TrainerEvent,
  trainablePeftModel,
  trainPpo,
  VALUE_HEAD_FILE,
} from '@webtune/train';
import type { LoadedModel } from './engine-worker.js';
import { listRuns, opfsStorage } from './opfs-storage.js';
import { RESULT_FILES } from './run-state.js';
import { openBase } from './webapp-engine.js';

/** The stop asked for between two PPO steps (trainPpo takes no signal: onStep throws this). */
class StopRequested extends Error {}

/** The prompt of an SFT row: its tokens up to the first trained label. */
function promptOf(row: EncodedExample): number[] {
  if (!('labels' in row)) throw new Error('stage ppo takes SFT rows (a prompt and an answer)');
  const labels = Array.from(row.labels);
  const first = labels.findIndex((label) => label !== -100);
  return Array.from(row.inputIds).slice(0, first < 0 ? labels.length : first);
}

/** The run a reward_model value names: `run-rm` or its output_dir `opfs/run-rm`. */
export function rewardRunName(rewardModel: string): string {
  return rewardModel.replace(/^opfs\//, '').replace(/\/+$/, '');
}

/** Loads the reward model of a stage rm run of this browser: its adapter on a copy of the base, and its head. */
async function loadRewardModel(loaded: LoadedModel, plan: RunPlan) {
  if (plan.task.type !== 'ppo') throw new Error('not a PPO plan');
  if (plan.task.rewardModelType !== 'lora') {
    throw new Error(
      `reward_model_type: ${plan.task.rewardModelType} is for config files; the board reads a LoRA reward-model run of this browser`,
    );
  }
  const runName = rewardRunName(plan.task.rewardModel);
  if (!(await listRuns()).includes(runName)) {
    throw new Error(
      `reward_model: no run “${runName}” in this browser; train one with stage Reward model (rm) first and name it here`,
    );
  }
  const storage = await opfsStorage(runName);
  const files = new Map<string, Uint8Array>();
  for (const name of [...RESULT_FILES, VALUE_HEAD_FILE]) {
    if (!(await storage.exists(name))) {
      throw new Error(
        `reward_model: run “${runName}” has no ${name}; only a completed stage rm run with LoRA leaves a reward model`,
      );
    }
    files.set(name, await storage.readFile(name));
  }
  const base = await openBase(loaded);
  try {
    const peft = await loadAdapter(base.model, memoryFileSource(files, runName));
    peft.eval();
    const head = await loadValueHead(base.model.device, memoryFileSource(files, runName), {
      hiddenSize: base.model.config.hiddenSize,
    });
    return { model: base.model, hiddenStates: trainablePeftModel(peft).hiddenStates, head, runName };
  } catch (error) {
    base.model.dispose();
    throw error;
  }
}

export interface BrowserPpoRun {
  loaded: LoadedModel;
  plan: RunPlan;
  peft: PeftModel;
  trainable: TrainableModel;
  rows: readonly EncodedExample[];
  padTokenId: number;
  stopTokens: number[];
  runName: string;
  signal: AbortSignal;
  emit: (event: TrainerEvent) => void;
  log: (line: string) => void;
}

/** Runs PPO in the worker; reports the trainer's events. */
export async function runPpoInBrowser(
  run: BrowserPpoRun,
): Promise<{ reason: TrainEndReason; steps: number; lastCheckpoint: null }> {
  const { loaded, plan, emit } = run;
  if (plan.task.type !== 'ppo') throw new Error('not a PPO plan');
  const queries = run.rows.map(promptOf);
  if (queries.length === 0) throw new Error('stage ppo: the data has no SFT rows to take prompts from');
  const reward = await loadRewardModel(loaded, plan);
  run.log(`reward model: run ${reward.runName} (LoRA + value head)`);
  const args = plan.trainingArguments;
  const device = loaded.pretrained.model.device;
  const started = performance.now();
  let stepsDone = 0;
  let stepStarted = started;
  let lastLoss = Number.NaN;
  let reason: TrainEndReason = 'completed';
  const storage = await opfsStorage(run.runName);
  // trainPpo's step count, told before the first (slow) step so the board can show it.
  const rollout =
    (args.perDeviceTrainBatchSize ?? 1) * (args.gradientAccumulationSteps ?? 1) * plan.task.bufferSize;
  const stepsPerEpoch = Math.ceil(queries.length / rollout);
  let totalSteps =
    (args.maxSteps ?? 0) > 0 ? args.maxSteps! : Math.ceil((args.numTrainEpochs ?? 3) * stepsPerEpoch);
  emit({
    type: 'train-start',
    totalSteps,
    stepsPerEpoch,
    trainRows: queries.length,
    validationRows: 0,
    trainableParameters: run.trainable
      .trainableParameters()
      .reduce((count, [, parameter]) => count + parameter.size, 0),
    resumedFrom: null,
    firstStep: 1,
  });
  try {
    const result = await trainPpo({
      model: loaded.pretrained.model,
      trainable: run.trainable,
      reward: rewardScorer({ device, hiddenStates: reward.hiddenStates }, reward.head, {
        padTokenId: run.padTokenId,
        batchSize: args.perDeviceTrainBatchSize ?? 1,
      }),
      queries,
      args,
      logitsChunkRows: plan.logitsChunkRows,
      ppo: {
        epochs: plan.task.epochs,
        bufferSize: plan.task.bufferSize,
        target: plan.task.target,
        scoreNorm: plan.task.scoreNorm,
        whitenRewards: plan.task.whitenRewards,
      },
      // Answers sampled from the policy, as LLaMA-Factory does (greedy answers would be off-policy).
      generation: {
        maxNewTokens: plan.config.max_new_tokens,
        temperature: plan.config.temperature,
        topP: plan.config.top_p,
        topK: plan.config.top_k,
        stopTokens: run.stopTokens,
      },
      padTokenId: run.padTokenId,
      storage,
      onStep: (figures) => {
        totalSteps = figures.totalSteps;
        stepsDone = figures.step;
        lastLoss = figures.loss;
        const now = performance.now();
        const elapsedMs = now - started;
        const stepMs = now - stepStarted;
        stepStarted = now;
        // Tokens this step generated (the rollout's answers): what a PPO step spends its time on.
        const tokens = Math.round(figures.responseLength * rollout);
        const memory = device.memory();
        emit({
          type: 'step-end',
          step: figures.step,
          totalSteps: figures.totalSteps,
          epoch: figures.step / stepsPerEpoch,
          loss: figures.loss,
          learningRate: figures.learningRate,
          gradNorm: Number.NaN,
          tokens,
          tokensPerSecond: tokens / Math.max(stepMs / 1000, 1e-3),
          stepMs,
          elapsedMs,
          remainingMs: (elapsedMs / figures.step) * (figures.totalSteps - figures.step),
          memory: { liveBytes: memory.liveBytes, peakBytes: memory.peakBytes },
          metrics: {
            reward: figures.reward,
            'ppo/kl': figures.kl,
            'ppo/kl_coef': figures.klCoefficient,
            'ppo/policy_loss': figures.policyLoss,
            'ppo/value_loss': figures.valueLoss,
            'ppo/clipfrac': figures.clipFraction,
            'ppo/response_length': figures.responseLength,
          },
        });
        if (run.signal.aborted) throw new StopRequested('stopped');
      },
    });
    await saveAdapter(run.peft, storage, { baseModelNameOrPath: plan.baseModel });
    await saveValueHead(result.valueHead, storage);
  } catch (error) {
    if (!(error instanceof StopRequested)) throw error;
    reason = 'stopped';
  } finally {
    reward.model.dispose();
  }
  const memory = device.memory();
  emit({
    type: 'train-end',
    reason,
    step: stepsDone,
    totalSteps,
    loss: lastLoss,
    elapsedMs: performance.now() - started,
    memory: { liveBytes: memory.liveBytes, peakBytes: memory.peakBytes },
    lastCheckpoint: null,
  });
  return { reason, steps: stepsDone, lastCheckpoint: null };
}
