import { DTYPE_BYTES, type DType } from '@webtune/tensors';

/** What the summary needs of a parameter: its element count and dtype (a Tensor fits). */
export interface ParameterInfo {
  size: number;
  dtype: DType;
}

/**
 * Trainable and total parameters, and the device bytes training will hold for them: the weights
 * (every parameter, frozen or not), a gradient per trainable element (same dtype as the
 * parameter), and the optimizer state (AdamW keeps two float32 moments per trainable element).
 * Activations are not included: they depend on batch and sequence length, not on the method.
 */
export interface TrainableSummary {
  trainableParameters: number;
  totalParameters: number;
  /** 100 * trainable / total. */
  trainablePercent: number;
  trainableTensors: number;
  weightBytes: number;
  gradientBytes: number;
  optimizerStateBytes: number;
  /** weights + gradients + optimizer state. */
  totalBytes: number;
}

export interface SummaryOptions {
  /** Optimizer state bytes per trainable element (default 8: AdamW's m and v in float32). */
  optimizerBytesPerElement?: number;
}

/**
 * Counts `all` parameters (each distinct object once: a tied head is one tensor) and the
 * `trainable` ones among them.
 */
export function trainableSummary(
  all: Iterable<ParameterInfo>,
  trainable: Iterable<ParameterInfo>,
  options: SummaryOptions = {},
): TrainableSummary {
  const perElement = options.optimizerBytesPerElement ?? 8;
  let totalParameters = 0;
  let weightBytes = 0;
  for (const parameter of new Set(all)) {
    totalParameters += parameter.size;
    weightBytes += parameter.size * DTYPE_BYTES[parameter.dtype];
  }
  let trainableParameters = 0;
  let gradientBytes = 0;
  let trainableTensors = 0;
  for (const parameter of new Set(trainable)) {
    trainableTensors++;
    trainableParameters += parameter.size;
    gradientBytes += parameter.size * DTYPE_BYTES[parameter.dtype];
  }
  const optimizerStateBytes = trainableParameters * perElement;
  return {
    trainableParameters,
    totalParameters,
    trainablePercent: totalParameters === 0 ? 0 : (100 * trainableParameters) / totalParameters,
    trainableTensors,
    weightBytes,
    gradientBytes,
    optimizerStateBytes,
    totalBytes: weightBytes + gradientBytes + optimizerStateBytes,
  };
}

/**
 * PEFT's print_trainable_parameters line plus the memory it implies, e.g.
 * `trainable params: 262,656 || all params: 15,454,368 || trainable%: 1.6995 || weights 59.0 MiB,
 * gradients 1.0 MiB, optimizer state 2.0 MiB`.
 */
export function formatTrainableSummary(summary: TrainableSummary): string {
  const count = (n: number) => n.toLocaleString('en-US');
  return (
    `trainable params: ${count(summary.trainableParameters)} || all params: ${count(summary.totalParameters)} || ` +
    `trainable%: ${summary.trainablePercent.toFixed(4)} || weights ${formatBytes(summary.weightBytes)}, ` +
    `gradients ${formatBytes(summary.gradientBytes)}, optimizer state ${formatBytes(summary.optimizerStateBytes)}`
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
