/**
 * PPO checkpoints (`save_steps`) and their resume (`resume_from_checkpoint`): the same atomic
 * checkpoint folders as the trainer's (checkpoint/checkpoint.ts) holding the policy adapter and the
 * value head (as parameters, and as PEFT / value_head files usable on their own), AdamW's moments,
 * and the loop's state: the adaptive KL coefficient, the running score moments, the place in the
 * query order and the update count. Generation, dropout and mini-batch order are seeded by the step,
 * so a resumed run repeats the uninterrupted one exactly.
 */
import type { ModelFileSink } from '@webtune/nn';
import type { AdaptiveKlController, RunningMoments } from '@webtune/objectives';
import type { Tensor } from '@webtune/tensors';
import {
  loadCheckpoint,
  type PpoLoopState,
  removeUnfinishedSaves,
  restoreTensors,
  saveCheckpoint,
  type TrainerState,
} from '../checkpoint/checkpoint.js';
import { findResumeCheckpoint } from '../checkpoint/resume.js';
import { runIdentity } from '../checkpoint/run-identity.js';
import type { TrainingStorage } from '../checkpoint/training-storage.js';
import type { ResolvedTrainingArguments } from '../config/training-arguments.js';
import type { TrainerLog } from '../log/trainer-log.js';
import type { AdamW } from '../optimizer/adamw.js';

/** What the PPO loop hands to a save and gets back from a resume. */
export interface PpoLoop {
  parameters: readonly [string, Tensor][];
  optimizer: AdamW;
  kl: AdaptiveKlController;
  moments: RunningMoments;
  /** The query order's place. */
  order: { epoch: number; left: number };
}

/** Saves and resumes one PPO run. */
export class PpoCheckpoints {
  private constructor(
    private readonly storage: TrainingStorage | null,
    private readonly args: ResolvedTrainingArguments,
    private readonly plan: TrainerState['plan'],
    private readonly identity: string,
  ) {}

  static async open(
    storage: TrainingStorage | null,
    args: ResolvedTrainingArguments,
    plan: TrainerState['plan'],
  ): Promise<PpoCheckpoints> {
    if (storage) await removeUnfinishedSaves(storage);
    return new PpoCheckpoints(storage, args, plan, await runIdentity(args, plan));
  }

  /**
   * Restores the checkpoint `args.resumeFromCheckpoint` names into `loop` and trims the log to it.
   * Returns the step it was saved at, its folder and the time spent before it (0 and null: a fresh run).
   */
  async resume(
    loop: PpoLoop,
    log: TrainerLog,
  ): Promise<{ step: number; path: string | null; elapsedMs: number }> {
    const request = this.args.resumeFromCheckpoint;
    if (!request) {
      await log.reset();
      return { step: 0, path: null, elapsedMs: 0 };
    }
    if (!this.storage) throw new Error('PPO: resumeFromCheckpoint needs a storage');
    const path = await findResumeCheckpoint(this.storage, request, this.identity);
    const loaded = await loadCheckpoint(this.storage, path);
    const ppo = loaded.state.ppo;
    if (!ppo) throw new Error(`PPO: ${path} was not saved by a PPO run`);
    const differences = (Object.keys(this.plan) as (keyof TrainerState['plan'])[])
      .filter((key) => loaded.state.plan[key] !== this.plan[key])
      .map((key) => `${key} ${loaded.state.plan[key]} -> ${this.plan[key]}`);
    if (differences.length > 0) {
      throw new Error(
        `PPO: ${path} was saved by a run with other settings (${differences.join(', ')}); resuming would not repeat it`,
      );
    }
    restoreTensors(loop.parameters, loaded.parameters, `resume from ${path}`);
    restoreTensors(loop.optimizer.stateTensors(), loaded.optimizer, `resume from ${path}`);
    loop.optimizer.stepCount = ppo.optimizerSteps;
    loop.kl.value = ppo.klCoefficient;
    loop.moments.restore(ppo.moments);
    loop.order.epoch = ppo.queryEpoch;
    loop.order.left = ppo.queriesLeft;
    await log.truncate(loaded.state.logRows);
    return { step: loaded.state.globalStep, path, elapsedMs: loaded.state.elapsedMs };
  }

  /** Saves `checkpoint-<step>` (keeping `saveTotalLimit`); returns its folder, or null without a storage. */
  async save(
    step: number,
    loop: PpoLoop,
    extra: { epoch: number; logRows: number; elapsedMs: number },
    exportFiles: (sink: ModelFileSink) => Promise<string[]>,
  ): Promise<string | null> {
    if (!this.storage) return null;
    const ppo: PpoLoopState = {
      klCoefficient: loop.kl.value,
      moments: loop.moments.state(),
      queryEpoch: loop.order.epoch,
      queriesLeft: loop.order.left,
      optimizerSteps: loop.optimizer.stepCount,
    };
    const state: TrainerState = {
      format: 'webtune-trainer-state',
      version: 1,
      globalStep: step,
      epoch: extra.epoch,
      position: { epoch: loop.order.epoch, microBatch: 0 },
      plan: this.plan,
      logRows: extra.logRows,
      elapsedMs: extra.elapsedMs,
      diagnostics: null,
      runIdentity: this.identity,
      ppo,
    };
    const saved = await saveCheckpoint(
      this.storage,
      { state, parameters: loop.parameters, optimizer: loop.optimizer.stateTensors(), exportFiles },
      this.args.saveTotalLimit,
    );
    return saved.path;
  }
}
