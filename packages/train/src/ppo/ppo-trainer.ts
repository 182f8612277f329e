/*
 * PPO as LLaMA-Factory runs it (its CustomPPOTrainer over TRL 0.9's PPOTrainer), read top to
 * bottom: for each PPO step take per_device_train_batch_size x gradient_accumulation_steps x
 * ppo_buffer_size queries; generate answers with the policy; score them with the reward model;
 * compute log-probabilities (policy, and reference = adapters off) and values; per-token rewards
 * with the KL penalty; GAE; then ppo_epochs passes over shuffled mini-batches, each backward batch
 * one AdamW update of the adapter and the value head; then adapt the KL coefficient.
 */
import type { CausalLM, ModelFileSink } from '@webtune/nn';
import {
  AdaptiveKlController,
  createValueHead,
  generalizedAdvantages,
  ppoLoss,
  RunningMoments,
  tokenRewards,
  VALUE_HEAD_NAMES,
  type ValueHead,
  whiten,
} from '@webtune/objectives';
import {
  autograd,
  backward,
  clipByGlobalNorm,
  gradOf,
  requiresGrad,
  type Tensor,
  zeroGrad,
} from '@webtune/tensors';
import type { TrainingStorage } from '../checkpoint/training-storage.js';
import { resolveTrainingArguments, type TrainingArguments } from '../config/training-arguments.js';
import { epochOrder } from '../data/epoch-order.js';
import { formatDuration, round, TrainerLog } from '../log/trainer-log.js';
import { shouldSave } from '../loop/strategies.js';
import type { TrainableModel } from '../model/trainable-model.js';
import { trainingOptimizer, trainingSchedule } from '../optimizer/training-optimizer.js';
import { learningRateAt } from '../schedule/learning-rate.js';
import type { LogitsChunking } from '../tasks/logits-chunks.js';
import { saveValueHead } from '../tasks/value-head-file.js';
import { PpoCheckpoints } from './ppo-checkpoint.js';
import {
  collateSamples,
  type GenerationSettings,
  generateSamples,
  logprobsAndValues,
  type PpoSample,
  rolloutValues,
} from './ppo-rollout.js';

/** LLaMA-Factory's PPO keys, and TRL 0.9's PPOConfig defaults for the rest. */
export interface PpoSettings {
  /** ppo_epochs (default 4). */
  epochs?: number;
  /** ppo_buffer_size: backward batches per PPO step (default 1). */
  bufferSize?: number;
  /** ppo_target: the KL the adaptive controller steers to (default 6; null: a fixed coefficient). */
  target?: number | null;
  /** ppo_score_norm: normalise scores by their running mean and std (default false). */
  scoreNorm?: boolean;
  /** ppo_whiten_rewards (default false). */
  whitenRewards?: boolean;
  initKlCoefficient?: number;
  gamma?: number;
  lambda?: number;
  clipRange?: number;
  clipRangeValue?: number;
  valueCoefficient?: number;
}

export interface TrainPpoOptions {
  /** The policy for generation (its LoRA layers injected). */
  model: CausalLM;
  /** The same model for training: its adapter trains; withAdaptersDisabled is the reference. */
  trainable: TrainableModel;
  /** The reward model's score of each sample (a value head on its last token, or anything else). */
  reward: (samples: readonly PpoSample[]) => Promise<number[]>;
  /** Prompt token ids (the rows' prompts, as the template renders them). */
  queries: readonly number[][];
  args?: TrainingArguments;
  ppo?: PpoSettings;
  generation: GenerationSettings;
  padTokenId: number;
  /** Rows of logits per chunk for the log-probabilities ('auto' by default, see logitsChunkRows). */
  logitsChunkRows?: LogitsChunking;
  /** The policy's value head (default: a fresh one, as TRL's AutoModelForCausalLMWithValueHead). */
  valueHead?: ValueHead;
  storage?: TrainingStorage | null;
  /** Called after every PPO step with its figures. */
  onStep?: (step: PpoStepFigures) => void;
}

export interface PpoStepFigures {
  step: number;
  totalSteps: number;
  /** Mean raw reward-model score of the step's answers (LLaMA-Factory's `reward`). */
  reward: number;
  /** Mean PPO loss over the step's mini-batches (`loss`). */
  loss: number;
  policyLoss: number;
  valueLoss: number;
  /** Mean summed KL (policy - reference) per answer, and the coefficient after the update. */
  kl: number;
  klCoefficient: number;
  clipFraction: number;
  learningRate: number;
  /** Mean answer length in tokens. */
  responseLength: number;
}

export interface PpoResult {
  /** The figures of the steps this call ran (after the checkpoint's step when resumed). */
  steps: PpoStepFigures[];
  valueHead: ValueHead;
  /** The checkpoint this call resumed from, and the last one saved (null: none). */
  resumedFrom: string | null;
  lastCheckpoint: string | null;
}

/**
 * Runs PPO; writes trainer_log.jsonl rows (loss, reward, lr, epoch, kl) when given a storage, saves
 * checkpoints as `saveStrategy`/`saveSteps` say and resumes one with `resumeFromCheckpoint`
 * (ppo-checkpoint.ts).
 */
export async function trainPpo(options: TrainPpoOptions): Promise<PpoResult> {
  const args = resolveTrainingArguments(options.args ?? {});
  const settings = {
    epochs: options.ppo?.epochs ?? 4,
    bufferSize: options.ppo?.bufferSize ?? 1,
    target: options.ppo?.target === undefined ? 6 : options.ppo.target,
    scoreNorm: options.ppo?.scoreNorm ?? false,
    whitenRewards: options.ppo?.whitenRewards ?? false,
    gamma: options.ppo?.gamma ?? 1,
    lambda: options.ppo?.lambda ?? 0.95,
  };
  if (!Number.isInteger(settings.epochs) || settings.epochs < 1)
    throw new Error(`PPO: ppo_epochs must be >= 1, got ${settings.epochs}`);
  if (!Number.isInteger(settings.bufferSize) || settings.bufferSize < 1) {
    throw new Error(`PPO: ppo_buffer_size must be >= 1, got ${settings.bufferSize}`);
  }
  const { trainable, queries } = options;
  const device = trainable.device;
  if (queries.length === 0) throw new Error('PPO: no queries to answer');
  const micro = args.perDeviceTrainBatchSize;
  const backwardBatch = micro * args.gradientAccumulationSteps;
  const rolloutSize = backwardBatch * settings.bufferSize;
  const stepsPerEpoch = Math.ceil(queries.length / rolloutSize);
  const totalSteps = args.maxSteps > 0 ? args.maxSteps : Math.ceil(args.numTrainEpochs * stepsPerEpoch);
  const schedule = trainingSchedule(args, totalSteps);

  const valueHead = options.valueHead ?? createValueHead(device, trainable.hiddenSize, args.seed);
  const parameters: [string, Tensor][] = [
    ...trainable.trainableParameters(),
    [VALUE_HEAD_NAMES.weight, valueHead.weight],
    [VALUE_HEAD_NAMES.bias, valueHead.bias],
  ];
  for (const [, parameter] of parameters) requiresGrad(parameter);
  const optimizer = trainingOptimizer(device, parameters, args);
  const kl = new AdaptiveKlController(options.ppo?.initKlCoefficient ?? 0.2, settings.target);
  const moments = new RunningMoments();
  const storage = options.storage ?? null;
  const log = new TrainerLog(storage);
  const figures: PpoStepFigures[] = [];
  const interval: PpoStepFigures[] = [];

  // ---- Checkpoints, and the resume: tensors, optimizer, KL coefficient, moments, query order.
  const loop = { parameters, optimizer, kl, moments, order: { epoch: 0, left: 0 } };
  const checkpoints = await PpoCheckpoints.open(storage, args, {
    seed: args.seed,
    trainRows: queries.length,
    microBatchSize: micro,
    accumulation: args.gradientAccumulationSteps * settings.bufferSize,
    totalSteps,
  });
  const resumed = await checkpoints.resume(loop, log);
  let lastCheckpoint = resumed.path;
  const started = performance.now() - resumed.elapsedMs;
  const exportFiles = async (sink: ModelFileSink) => [
    ...((await trainable.exportFiles?.(sink, { baseModelNameOrPath: args.modelNameOrPath ?? undefined })) ??
      []),
    ...(await saveValueHead(valueHead, sink)),
  ];

  // The query order: shuffled per epoch from the seed; a step takes the next rolloutSize queries.
  // A resume finds its place from the epoch and the queries left of it.
  let order: number[] =
    loop.order.left > 0
      ? epochOrder(queries.length, args.seed, loop.order.epoch - 1, args.shuffle).slice(
          queries.length - loop.order.left,
        )
      : [];
  const nextQueries = () => {
    const picked: number[][] = [];
    while (picked.length < rolloutSize) {
      if (order.length === 0) order = epochOrder(queries.length, args.seed, loop.order.epoch++, args.shuffle);
      picked.push(queries[order.shift()!]);
    }
    loop.order.left = order.length;
    return picked;
  };

  try {
    for (let step = resumed.step + 1; step <= totalSteps; step++) {
      const learningRate = learningRateAt(step - 1, schedule);
      // ---- Rollout: answers from the policy as it is now (no dropout), their scores and values.
      trainable.setTraining?.(false, 0);
      const samples: PpoSample[] = [];
      const picked = nextQueries();
      for (let start = 0; start < picked.length; start += micro) {
        const part = picked.slice(start, start + micro);
        samples.push(
          ...(await generateSamples(
            options.model,
            part,
            options.generation,
            args.seed * 7919 + step * 131 + start,
          )),
        );
      }
      const rawScores = await options.reward(samples);
      if (rawScores.length !== samples.length || rawScores.some((s) => !Number.isFinite(s))) {
        throw new Error(
          `PPO: the reward model gave ${rawScores.length} finite scores for ${samples.length} answers`,
        );
      }
      const scores = settings.scoreNorm ? Array.from(moments.normalize(rawScores)) : rawScores;
      const rollout = await rolloutValues(
        trainable,
        valueHead,
        samples,
        options.padTokenId,
        micro,
        options.logitsChunkRows,
      );

      // ---- Rewards, advantages and returns on the host.
      const rewards: Float64Array[] = [];
      let klSum = 0;
      samples.forEach((_, i) => {
        const result = tokenRewards(scores[i], rollout.logprobs[i], rollout.referenceLogprobs[i], kl.value);
        rewards.push(result.rewards);
        klSum += result.kl.reduce((a, b) => a + b, 0);
      });
      if (settings.whitenRewards) whiten(rewards, false);
      const gae = samples.map((_, i) =>
        generalizedAdvantages(rewards[i], rollout.values[i], settings.gamma, settings.lambda),
      );
      whiten(gae.map((g) => g.advantages));

      // ---- ppo_epochs passes over shuffled mini-batches; one update per backward batch.
      trainable.setTraining?.(true, args.seed + step);
      const stats = { loss: 0, policy: 0, value: 0, clip: 0, count: 0 };
      for (let pass = 0; pass < settings.epochs; pass++) {
        const permutation = epochOrder(samples.length, args.seed + step, pass, true);
        for (let b = 0; b < permutation.length; b += backwardBatch) {
          const batchIndices = permutation.slice(b, b + backwardBatch);
          const micros = Math.ceil(batchIndices.length / micro);
          const readbacks: Tensor[] = [];
          for (let m = 0; m < batchIndices.length; m += micro) {
            const indices = batchIndices.slice(m, m + micro);
            readbacks.push(
              device.scope(() => {
                const batch = collateSamples(
                  device,
                  indices.map((i) => samples[i]),
                  options.padTokenId,
                );
                const host = (field: (i: number, k: number) => number) => {
                  const values = new Float32Array(batch.rows * batch.seq);
                  indices.forEach((i, r) => {
                    const from = samples[i].query.length - 1;
                    for (let k = 0; k < samples[i].response.length; k++)
                      values[r * batch.seq + from + k] = field(i, k);
                  });
                  return device.fromArray(values, [batch.rows, batch.seq], 'f32');
                };
                const now = logprobsAndValues(trainable, valueHead, batch, {
                  gradientCheckpointing: args.gradientCheckpointing,
                  chunkRows: options.logitsChunkRows,
                });
                const { loss, statistics } = ppoLoss(
                  {
                    logprobs: now.logprobs,
                    values: now.values,
                    oldLogprobs: host((i, k) => rollout.logprobs[i][k]),
                    oldValues: host((i, k) => rollout.values[i][k]),
                    advantages: host((i, k) => gae[i].advantages[k]),
                    returns: host((i, k) => gae[i].returns[k]),
                    mask: batch.mask,
                  },
                  {
                    clipRange: options.ppo?.clipRange,
                    clipRangeValue: options.ppo?.clipRangeValue,
                    valueCoefficient: options.ppo?.valueCoefficient,
                  },
                );
                backward(micros > 1 ? autograd.scale(loss, 1 / micros) : loss);
                return statistics.keep();
              }),
            );
          }
          const gradients = new Map<Tensor, Tensor>();
          for (const [, parameter] of parameters) {
            const grad = gradOf(parameter);
            if (grad) gradients.set(parameter, grad);
          }
          if (args.maxGradNorm > 0 && gradients.size > 0) {
            device.scope(() => clipByGlobalNorm([...gradients.values()], args.maxGradNorm));
          }
          optimizer.step(gradients, learningRate);
          zeroGrad(parameters.map(([, p]) => p));
          for (const tensor of readbacks) {
            const [policy, value, clipFraction] = (await tensor.toArray()) as Float32Array;
            tensor.dispose();
            stats.policy += policy;
            stats.value += value;
            stats.loss += policy + (options.ppo?.valueCoefficient ?? 0.1) * value;
            stats.clip += clipFraction;
            stats.count++;
          }
        }
      }
      const meanKl = klSum / samples.length;
      kl.update(meanKl, samples.length);

      const row: PpoStepFigures = {
        step,
        totalSteps,
        reward: rawScores.reduce((a, b) => a + b, 0) / rawScores.length,
        loss: stats.loss / stats.count,
        policyLoss: stats.policy / stats.count,
        valueLoss: stats.value / stats.count,
        kl: meanKl,
        klCoefficient: kl.value,
        clipFraction: stats.clip / stats.count,
        learningRate,
        responseLength: samples.reduce((a, s) => a + s.response.length, 0) / samples.length,
      };
      figures.push(row);
      interval.push(row);
      options.onStep?.(row);
      if (step % args.loggingSteps === 0 || step === totalSteps) {
        const mean = (key: keyof PpoStepFigures) =>
          interval.reduce((a, r) => a + (r[key] as number), 0) / interval.length;
        const elapsed = performance.now() - started;
        await log.append({
          current_steps: step,
          total_steps: totalSteps,
          loss: round(mean('loss')),
          reward: round(mean('reward')),
          lr: learningRate,
          epoch: round(step / stepsPerEpoch, 2),
          percentage: round((step / totalSteps) * 100, 2),
          elapsed_time: formatDuration(elapsed),
          remaining_time: formatDuration((elapsed / step) * (totalSteps - step)),
          'ppo/kl': round(mean('kl')),
          'ppo/kl_coef': round(kl.value, 6),
          'ppo/policy_loss': round(mean('policyLoss')),
          'ppo/value_loss': round(mean('valueLoss')),
          'ppo/clipfrac': round(mean('clipFraction')),
          'ppo/response_length': round(mean('responseLength'), 2),
        });
        interval.length = 0;
      }
      if (shouldSave(args, { step, totalSteps, endsEpoch: order.length === 0 })) {
        lastCheckpoint =
          (await checkpoints.save(
            step,
            loop,
            { epoch: step / stepsPerEpoch, logRows: log.rows, elapsedMs: performance.now() - started },
            exportFiles,
          )) ?? lastCheckpoint;
      }
    }
  } finally {
    optimizer.dispose();
  }
  return { steps: figures, valueHead, resumedFrom: resumed.path, lastCheckpoint };
}
