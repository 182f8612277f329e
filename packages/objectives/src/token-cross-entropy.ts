import { autograd, checkpoint, rowGradient, slice, type Tensor, TensorError } from '@webtune/tensors';

/** Label of tokens every loss ignores (PyTorch's ignore_index, LLaMA-Factory's IGNORE_INDEX). */
export const IGNORE_INDEX = -100;

/**
 * Where the logits come from: a logits tensor [..., vocab], or hidden states [..., hidden] and
 * the classifier to apply to them. The second form computes the logits in chunks of `chunkRows`
 * rows, each under gradient checkpointing, so at most one chunk of logits is alive at a time,
 * also during backward (the classifier of a 32k vocabulary over a long batch is most of a step's
 * memory otherwise).
 */
export type LogitsSource = Tensor | ClassifierSource;

export interface ClassifierSource {
  hidden: Tensor;
  /** hidden [rows, hidden] -> logits [rows, vocab]; called once per chunk, and again in backward. */
  head: (hidden: Tensor) => Tensor;
  /** Rows of logits computed at once (default: all rows in one go, no checkpointing). */
  chunkRows?: number;
  /**
   * The classifier has no parameter that trains (LoRA leaves the head frozen). Chunked, each
   * chunk's gradient with respect to its hidden states is then made in forward, right after its
   * loss (rowGradient), instead of recomputing the chunk's logits in backward: two classifier
   * products per chunk instead of three. A head that does train makes rowGradient throw.
   */
  frozen?: boolean;
}

/**
 * Per-token cross-entropy -log softmax(logits)[target] for targets of the logits' leading shape
 * (i32), 0 where the target is IGNORE_INDEX. The result has the targets' shape and is
 * differentiable with respect to the logits (or to the hidden states and the classifier).
 */
export function tokenCrossEntropy(source: LogitsSource, targets: Tensor): Tensor {
  if (targets.dtype !== 'i32') {
    throw new TensorError(`tokenCrossEntropy: targets ${targets.describe()} must be i32`);
  }
  const rows = targets.size;
  if (!isClassifierSource(source)) {
    const vocab = source.shape[source.rank - 1];
    if (source.size !== rows * vocab) {
      throw new TensorError(
        `tokenCrossEntropy: logits ${source.describe()} do not fit targets ${targets.describe()}`,
      );
    }
    const logits = autograd.reshape(source, [rows, vocab]);
    return autograd.reshape(rowLosses(logits, targets.reshape([rows])), targets.shape);
  }
  const { hidden, head } = source;
  const width = hidden.shape[hidden.rank - 1];
  if (hidden.size !== rows * width) {
    throw new TensorError(
      `tokenCrossEntropy: hidden states ${hidden.describe()} do not fit targets ${targets.describe()}`,
    );
  }
  const flat = autograd.reshape(hidden, [rows, width]);
  const flatTargets = targets.reshape([rows]);
  const chunkRows = Math.max(1, Math.floor(source.chunkRows ?? rows));
  if (chunkRows >= rows) return autograd.reshape(rowLosses(head(flat), flatTargets), targets.shape);
  const pieces: Tensor[] = [];
  for (let start = 0; start < rows; start += chunkRows) {
    const end = Math.min(rows, start + chunkRows);
    const chunk = autograd.slice(flat, [start, 0], [end, width]);
    const chunkTargets = slice(flatTargets, [start], [end]);
    if (source.frozen) {
      // Each token's loss depends on its own hidden state alone: its gradient is made now and
      // the logits are freed at once (the targets are only read here).
      pieces.push(rowGradient((h) => rowLosses(head(h), chunkTargets), chunk));
      continue;
    }
    // The chunk's logits are recomputed in backward instead of being kept for it; the targets
    // go in as an input so that the tape holds them until then.
    pieces.push(checkpoint((h, t) => rowLosses(head(h), t), [chunk, chunkTargets]));
  }
  return autograd.reshape(autograd.concat(pieces, 0), targets.shape);
}

function rowLosses(logits: Tensor, targets: Tensor): Tensor {
  const { loss, logSumExp, tokenCount } = autograd.crossEntropy(logits, targets, {
    ignoreIndex: IGNORE_INDEX,
    reduction: 'none',
  });
  // Only `loss` is recorded; the tape holds its own handles to what backward needs.
  logSumExp.dispose();
  tokenCount.dispose();
  return loss;
}

function isClassifierSource(source: LogitsSource): source is ClassifierSource {
  return typeof (source as ClassifierSource).head === 'function';
}
