/**
 * The parts of a run plan that need the model: the method applied to it, and the stage's task.
 * Front ends load the model and data; these calls do the rest the same way for all of them.
 */
import type { CausalLM, ModelFileSource } from '@webtune/nn';
import { freezeTrainableNames, getPeftModel, loadAdapter, type PeftModel } from '@webtune/peft';
import { type TrainableModel, trainableCausalLM, trainablePeftModel } from '../model/trainable-model.js';
import { ktoTask } from '../tasks/kto-task.js';
import type { LogitsChunking } from '../tasks/logits-chunks.js';
import { preferenceTask } from '../tasks/preference-task.js';
import { rewardTask } from '../tasks/reward-task.js';
import { supervisedTask } from '../tasks/sft-task.js';
import type { TrainingTask } from '../tasks/training-task.js';
import type { MethodPlan, TaskPlan } from './run-plan.js';

/** A model ready for the trainer, and its adapters when the method adds some. */
export interface AppliedMethod {
  trainable: TrainableModel;
  peft: PeftModel | null;
  /** Names of the parameters that train. */
  trainableNames: string[];
  /** Freeze and full tuning change the base weights themselves. */
  changesBaseWeights: boolean;
}

export interface ApplyMethodOptions {
  seed: number;
  /** Opens the folder of a `continue-adapter` plan (the front end knows where files live). */
  openAdapter?: (path: string) => Promise<ModelFileSource>;
}

/** Adds the plan's adapters to `model`, or picks the parameters that train. */
export async function applyMethod(
  model: CausalLM,
  method: MethodPlan,
  options: ApplyMethodOptions,
): Promise<AppliedMethod> {
  let peft: PeftModel | null = null;
  if (method.type === 'continue-adapter') {
    if (!options.openAdapter) throw new Error(`applyMethod: cannot open the adapter ${method.path} here`);
    const source = await options.openAdapter(method.path);
    try {
      peft = await loadAdapter(model, source);
    } finally {
      await source.close?.();
    }
  } else if (method.type === 'lora' || method.type === 'adapter') {
    peft = await getPeftModel(model, method.config, { seed: options.seed });
  }
  if (peft) {
    const convertPissaToLora = method.type === 'lora' && method.pissaConvert === true;
    const trainable = trainablePeftModel(peft, { convertPissaToLora });
    const trainableNames = trainable.trainableParameters().map(([name]) => name);
    return { trainable, peft, trainableNames, changesBaseWeights: false };
  }
  const names = method.type === 'freeze' ? freezeTrainableNames(model, method.options) : undefined;
  const trainable = trainableCausalLM(model, { trainable: names });
  const trainableNames = names ?? trainable.trainableParameters().map(([name]) => name);
  return { trainable, peft: null, trainableNames, changesBaseWeights: true };
}

export interface CreateTaskOptions {
  /** The tokenizer's pad token id (0 when it has none). */
  padTokenId: number;
  seed: number;
  /** The plan's logitsChunkRows ('auto' when absent). */
  logitsChunkRows?: LogitsChunking;
}

/** The stage's training task. */
export function createTask(task: TaskPlan, options: CreateTaskOptions): TrainingTask<unknown> {
  const collate = { padTokenId: options.padTokenId };
  const chunkRows = options.logitsChunkRows ?? 'auto';
  switch (task.type) {
    case 'supervised':
      return supervisedTask({
        stage: task.stage,
        collate,
        dft: task.dft,
        chunkRows,
      }) as TrainingTask<unknown>;
    case 'preference':
      return preferenceTask({
        loss: task.loss,
        beta: task.beta,
        labelSmoothing: task.labelSmoothing,
        simpoGamma: task.simpoGamma,
        ftx: task.ftx,
        collate,
        chunkRows,
      }) as TrainingTask<unknown>;
    case 'kto':
      return ktoTask({
        beta: task.beta,
        desirableWeight: task.desirableWeight,
        undesirableWeight: task.undesirableWeight,
        ftx: task.ftx,
        collate,
        chunkRows,
      }) as TrainingTask<unknown>;
    case 'ppo':
      // trainPpo trains (generation in the loop); its rows are SFT rows, so the SFT loss is what
      // evaluating them means.
      return supervisedTask({ stage: 'sft', collate, chunkRows }) as TrainingTask<unknown>;
    case 'reward':
      return rewardTask({ seed: options.seed, collate }) as TrainingTask<unknown>;
  }
}

/** The row kinds a task trains on (prepared data may hold others, which it skips). */
export function rowKindsOf(task: TaskPlan): readonly string[] {
  if (task.type === 'supervised' || task.type === 'ppo') return ['supervised', 'pretrain'];
  return task.type === 'kto' ? ['kto'] : ['preference'];
}
