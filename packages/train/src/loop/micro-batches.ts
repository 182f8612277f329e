import { add, backward, concat, noGrad, type Tensor } from '@webtune/tensors';
import type { TrainableModel, TrainingForwardOptions } from '../model/trainable-model.js';
import type { TaskBatch, TrainingTask } from '../tasks/training-task.js';

/** The summed loss of some micro-batches and each one's statistics, still on the device. */
export interface AccumulatedLoss {
  /** Sum of the micro-batches' losses (each already divided by the normaliser of them all). */
  loss: Tensor;
  /** One tensor of statistics per micro-batch whose task returned some, in order. */
  statistics: Tensor[];
}

export interface AccumulateOptions extends TrainingForwardOptions {
  /** Differentiate each micro-batch (gradients accumulate on the parameters); false: under noGrad. */
  differentiate: boolean;
  /** Called before each micro-batch (train mode sets the dropout seed here). */
  beforeMicroBatch?: (micro: number) => void;
}

/**
 * Runs the micro-batches one at a time, each in its own device scope so its activations are freed
 * once backward has consumed them (or at once under noGrad), and sums the losses into one tensor.
 * The same code serves a training step and an evaluation pass.
 */
export function accumulate<Row>(
  model: TrainableModel,
  task: TrainingTask<Row>,
  batches: readonly TaskBatch<Row>[],
  normalizer: number,
  options: AccumulateOptions,
): AccumulatedLoss {
  const device = model.device;
  const { differentiate, beforeMicroBatch, ...forwardOptions } = options;
  let total: Tensor | null = null;
  const statistics: Tensor[] = [];
  batches.forEach((batch, micro) => {
    beforeMicroBatch?.(micro);
    const run = () => {
      const result = task.forward(model, batch, normalizer, forwardOptions);
      if (differentiate) backward(result.loss);
      const next: Tensor = total ? add(total, result.loss) : add(result.loss, 0);
      total?.dispose();
      total = next.keep();
      if (result.statistics) statistics.push(result.statistics.keep());
    };
    device.scope(() => (differentiate ? run() : noGrad(run)));
  });
  if (!total) throw new Error('accumulate: no micro-batches');
  return { loss: total, statistics };
}

/**
 * Reads the loss, any extra scalars (the gradient norm) and the statistics back in one transfer
 * (a sync point), then frees them. Returns the scalars in order and the statistics' values.
 */
export async function readBack(
  accumulated: AccumulatedLoss,
  scalars: readonly Tensor[] = [],
): Promise<{ scalars: number[]; statistics: Float32Array; sizes: number[] }> {
  const { loss, statistics } = accumulated;
  const device = loss.device;
  const packed = device.scope(() =>
    concat(
      [
        loss.reshape([1]),
        ...scalars.map((s) => s.reshape([1])),
        ...statistics.map((s) => s.reshape([s.size])),
      ],
      0,
    ).keep(),
  );
  const values = (await packed.toArray()) as Float32Array;
  const sizes = statistics.map((s) => s.size);
  packed.dispose();
  loss.dispose();
  for (const s of statistics) s.dispose();
  const count = 1 + scalars.length;
  return { scalars: Array.from(values.subarray(0, count)), statistics: values.subarray(count), sizes };
}

/** Feeds each micro-batch's block of read-back statistics to the task's metrics. */
export function computeMetrics<Row>(
  task: TrainingTask<Row>,
  values: Float32Array,
  sizes: readonly number[],
  prefix: string,
): Record<string, number> {
  const metrics = task.metrics;
  if (!metrics || sizes.length === 0) return {};
  metrics.reset();
  let offset = 0;
  for (const size of sizes) {
    metrics.update(values.subarray(offset, offset + size));
    offset += size;
  }
  const computed = metrics.compute(prefix);
  metrics.reset();
  return computed;
}

/** The units (trained tokens, pairs) of the rows, the normaliser of their summed loss (at least 1). */
export function normalizerOf<Row>(task: TrainingTask<Row>, rows: readonly Row[]): number {
  const units = rows.reduce((total, row) => total + task.unitsOf(row), 0);
  return units > 0 ? units : 1;
}
