/**
 * The optimizer and learning-rate schedule of a run from its TrainingArguments, in one place for
 * every loop (the trainer's and PPO's): AdamW with the run's betas, epsilon and weight decay, LoRA+
 * learning-rate multiples when `loraplus_lr_ratio` is set, and the schedule over the run's steps.
 */
import type { Device, Tensor } from '@webtune/tensors';
import type { ResolvedTrainingArguments } from '../config/training-arguments.js';
import type { ScheduleOptions } from '../schedule/learning-rate.js';
import { AdamW } from './adamw.js';
import { loraPlusLearningRateScale } from './lora-plus.js';

/** AdamW over `parameters` as the arguments say. */
export function trainingOptimizer(
  device: Device,
  parameters: readonly [string, Tensor][],
  args: ResolvedTrainingArguments,
): AdamW {
  return new AdamW(device, parameters, {
    beta1: args.adamBeta1,
    beta2: args.adamBeta2,
    eps: args.adamEpsilon,
    weightDecay: args.weightDecay,
    learningRateScale:
      args.loraplusLrRatio === null
        ? undefined
        : loraPlusLearningRateScale({
            learningRate: args.learningRate,
            ratio: args.loraplusLrRatio,
            embeddingLearningRate: args.loraplusLrEmbedding,
          }),
  });
}

/** The learning-rate schedule of a run of `totalSteps` optimizer steps (for `learningRateAt`). */
export function trainingSchedule(args: ResolvedTrainingArguments, totalSteps: number): ScheduleOptions {
  return {
    type: args.lrSchedulerType,
    learningRate: args.learningRate,
    totalSteps,
    warmupSteps: args.warmupSteps,
    warmupRatio: args.warmupRatio,
    kwargs: args.lrSchedulerKwargs,
  };
}
