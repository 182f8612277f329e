import type { ResolvedTrainingArguments } from '../config/training-arguments.js';
import { epochOrder, microBatchesOf } from '../data/epoch-order.js';

/** Where the data order stands: the epoch and the next micro-batch in it. */
export interface DataPosition {
  epoch: number;
  microBatch: number;
}

/**
 * The arithmetic of a run: micro-batches per epoch, steps per epoch, total steps, and which rows
 * each step takes. The data order is a pure function of (seed, epoch), so a resumed run finds its
 * place from the position alone.
 */
export class StepPlan {
  readonly microBatchSize: number;
  readonly accumulation: number;
  readonly microBatchesPerEpoch: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  private cached: { epoch: number; batches: number[][] } | null = null;

  constructor(
    private readonly rowCount: number,
    private readonly args: ResolvedTrainingArguments,
  ) {
    this.microBatchSize = args.perDeviceTrainBatchSize;
    this.accumulation = args.gradientAccumulationSteps;
    this.microBatchesPerEpoch = Math.ceil(rowCount / this.microBatchSize);
    this.stepsPerEpoch = Math.ceil(this.microBatchesPerEpoch / this.accumulation);
    this.totalSteps = args.maxSteps > 0 ? args.maxSteps : Math.ceil(args.numTrainEpochs * this.stepsPerEpoch);
    // A stream (rowCount -1) has no known epoch: the run counts as one epoch of max_steps.
    if (rowCount < 0) this.stepsPerEpoch = this.totalSteps;
  }

  /** What a checkpoint records to refuse resuming under other settings. */
  get fingerprint() {
    return {
      seed: this.args.seed,
      trainRows: this.rowCount,
      microBatchSize: this.microBatchSize,
      accumulation: this.accumulation,
      totalSteps: this.totalSteps,
    };
  }

  /** The micro-batches (row indices) of an epoch; one epoch's order is kept at a time. */
  batchesOf(epoch: number): number[][] {
    if (this.cached?.epoch !== epoch) {
      const order = epochOrder(this.rowCount, this.args.seed, epoch, this.args.shuffle);
      this.cached = { epoch, batches: microBatchesOf(order, this.microBatchSize) };
    }
    return this.cached.batches;
  }

  /**
   * The next step's micro-batches from `position`: the next `accumulation` of the epoch (fewer at
   * its end), moving to the next epoch when this one is used up. Returns where the step starts.
   */
  nextStep(position: DataPosition): { start: DataPosition; microBatches: number[][] } {
    if (this.rowCount < 0) {
      // A stream: full micro-batches, ids counting the rows pulled so far.
      const microBatches = Array.from({ length: this.accumulation }, (_, batch) =>
        Array.from(
          { length: this.microBatchSize },
          (_, row) => (position.microBatch + batch) * this.microBatchSize + row,
        ),
      );
      return { start: position, microBatches };
    }
    const start =
      position.microBatch >= this.batchesOf(position.epoch).length
        ? { epoch: position.epoch + 1, microBatch: 0 }
        : position;
    const microBatches = this.batchesOf(start.epoch).slice(
      start.microBatch,
      start.microBatch + this.accumulation,
    );
    return { start, microBatches };
  }

  /** True when `position` (after a step) has used up its epoch (never for a stream). */
  endsEpoch(position: DataPosition): boolean {
    if (this.rowCount < 0) return false;
    return position.microBatch >= this.batchesOf(position.epoch).length;
  }
}
