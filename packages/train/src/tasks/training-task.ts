import type { ModelFileSink } from '@webtune/nn';
import type { Tensor } from '@webtune/tensors';
import type { TrainableModel, TrainingForwardOptions } from '../model/trainable-model.js';

/** One micro-batch's contribution to an optimizer step. */
export interface TaskStep {
  /** The differentiable loss, already divided by the step's normalizer (so micro-batches add up). */
  loss: Tensor;
  /** Detached values the task's metrics read back at the end of the step (null: none). */
  statistics: Tensor | null;
}

/** Metrics of a task as an object: update with read-back statistics, compute, reset. */
export interface TaskMetrics {
  update(values: Float32Array): void;
  /** By LLaMA-Factory's names, with `prefix` (`eval_`) in front. */
  compute(prefix?: string): Record<string, number>;
  reset(): void;
}

/** A micro-batch of rows with their ids (train rows i >= 0, validation rows -(i + 1)). */
export interface TaskBatch<Row> {
  rows: readonly Row[];
  ids: readonly number[];
}

/**
 * What a training stage adds to the loop: how a micro-batch becomes a loss, what a row weighs in
 * the normaliser, and the stage's metrics. The loop itself (trainer.ts) is the same for every stage.
 */
export interface TrainingTask<Row> {
  readonly stage: 'pt' | 'sft' | 'dpo' | 'kto' | 'rm';
  /** What one row adds to the normaliser: trained tokens (SFT) or 1 (a pair). */
  unitsOf(row: Row): number;
  /** Tokens one row feeds through the model (for tokens/s). */
  tokensOf(row: Row): number;
  /** Parameters the task itself trains (a value head), by name; [] for most tasks. */
  parameters(model: TrainableModel): [string, Tensor][];
  /** Runs before the first step (DPO computes precomputed reference values here). */
  prepare?(
    model: TrainableModel,
    splits: { train: readonly Row[]; validation: readonly Row[] },
    batchSize: number,
  ): Promise<void>;
  /** Forward pass and loss of one micro-batch; `normalizer` is the units of the whole step. */
  forward(
    model: TrainableModel,
    batch: TaskBatch<Row>,
    normalizer: number,
    options: TrainingForwardOptions,
  ): TaskStep;
  readonly metrics: TaskMetrics | null;
  /**
   * Writes the task's own trained parameters as files beside the model's (a reward model's
   * value_head.safetensors), into checkpoints and the output folder; returns the names written.
   */
  exportFiles?(sink: ModelFileSink): Promise<string[]>;
}
