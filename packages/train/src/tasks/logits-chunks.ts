/**
 * How many rows of vocabulary logits a loss computes at once: the one rule every task that
 * applies the classifier (SFT/pt, the DPO family, KTO, PPO's log-probabilities) and the memory
 * plan follow.
 *
 * The rule (`'auto'`, the default): with f32 logits of `4 * vocab` bytes per row,
 * - a frozen classifier (LoRA, freeze tuning without the head) is chunked as soon as the whole
 *   logits exceed LOGITS_CHUNK_BYTES (64 MiB) or one storage binding. Each chunk's gradient is
 *   made in its forward (rowGradient): the same two classifier products as unchunked, while only
 *   one chunk's logits and their gradient are alive, plus the [tokens, hidden] row gradient.
 * - a classifier that trains (full fine-tuning, `additional_target: lm_head`, a tied table that
 *   trains) is recomputed per chunk in backward (checkpointing: a third classifier product), so
 *   it is chunked only when the whole logits exceed TRAINED_HEAD_LOGITS_BYTES (256 MiB) or one
 *   binding.
 * - Chunked, the rows are split into the fewest chunks of at most
 *   floor(min(LOGITS_CHUNK_BYTES, binding) / (4 * vocab)) rows, that limit rounded down to a
 *   multiple of LOGITS_CHUNK_ALIGN (64) rows where at least 64 fit (else of 8): the matmul's row
 *   tiles stay full. The chunks are as even as that allows (ceil(rows / chunks) rounded up to the
 *   same multiple), the last one shorter.
 *
 * Why these figures: on lavapipe every extra chunk and every ragged row tile cost time (the
 * stories15M shape, 4 x 256 tokens, took 10-20% more CPU per step in 256-row chunks than whole,
 * and about the same in 512-row chunks; two Qwen3-0.6B layers in 43-row chunks ran at 5.3
 * against 7.1 tokens/s, each chunk decoding the packed table again), while one chunk's logits
 * and gradient at 64 MiB (128 MiB together) are a small share of a browser tab's 4 GiB.
 *
 * A number overrides it: 0 computes all logits at once, n >= 1 chunks of n rows (webtune's
 * `logits_chunk_rows` key).
 */
import type { Tensor } from '@webtune/tensors';
import type { TrainableModel } from '../model/trainable-model.js';

/** `'auto'` (the rule above), 0 (off: all rows at once) or rows per chunk. */
export type LogitsChunking = 'auto' | number;

/** The largest chunk of f32 logits the rule makes, in bytes. */
export const LOGITS_CHUNK_BYTES = 64 * 1024 ** 2;

/** Chunks hold a multiple of this many rows where at least this many fit. */
export const LOGITS_CHUNK_ALIGN = 64;

/** Whole logits above this many bytes are chunked even when the classifier trains. */
export const TRAINED_HEAD_LOGITS_BYTES = 256 * 1024 ** 2;

export interface LogitsChunkFacts {
  /** Rows of logits (tokens) the loss computes in this micro-batch. */
  rows: number;
  vocabSize: number;
  /** No parameter of the classifier trains (TrainableModel.headFrozen). */
  headFrozen: boolean;
  /** The device's largest storage binding (Device.maxBindingBytes). */
  maxBindingBytes: number;
}

/** Rows per chunk of logits, or undefined to compute all `rows` at once. */
export function logitsChunkRows(
  setting: LogitsChunking | undefined,
  facts: LogitsChunkFacts,
): number | undefined {
  const { rows, vocabSize, headFrozen, maxBindingBytes } = facts;
  if (setting !== undefined && setting !== 'auto') {
    checkLogitsChunking(setting, 'chunkRows');
    return setting === 0 || setting >= rows ? undefined : setting;
  }
  const rowBytes = 4 * vocabSize;
  const whole = rows * rowBytes;
  const budget = Math.min(LOGITS_CHUNK_BYTES, maxBindingBytes);
  const threshold = headFrozen ? budget : Math.min(TRAINED_HEAD_LOGITS_BYTES, maxBindingBytes);
  if (whole <= threshold) return undefined;
  const largest = Math.floor(budget / rowBytes);
  const align = largest >= LOGITS_CHUNK_ALIGN ? LOGITS_CHUNK_ALIGN : largest >= 8 ? 8 : 1;
  const limit = Math.max(1, Math.floor(largest / align) * align);
  const chunks = Math.ceil(rows / limit);
  return Math.min(limit, Math.ceil(Math.ceil(rows / chunks) / align) * align);
}

/** Throws unless `value` is 'auto', 0 or a positive integer; `key` names the setting in the message. */
export function checkLogitsChunking(value: unknown, key: string): asserts value is LogitsChunking {
  if (value === 'auto') return;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return;
  throw new RangeError(
    `${key} must be 'auto', 0 (all logits at once) or a positive number of rows per chunk, got ${JSON.stringify(value)}`,
  );
}

/**
 * The loss's view of `model`'s classifier over `hidden` ([..., hidden]): the head, whether it is
 * frozen, and the rows per chunk `setting` gives (tokenCrossEntropy's ClassifierSource).
 */
export function classifierSource(model: TrainableModel, hidden: Tensor, setting: LogitsChunking | undefined) {
  const frozen = model.headFrozen?.() ?? false;
  const rows = hidden.size / hidden.shape[hidden.rank - 1];
  // A model that does not say its vocabulary is chunked only when asked to.
  const chunkRows =
    model.vocabSize === undefined && (setting === undefined || setting === 'auto')
      ? undefined
      : logitsChunkRows(setting, {
          rows,
          vocabSize: model.vocabSize ?? 0,
          headFrozen: frozen,
          maxBindingBytes: model.device.maxBindingBytes,
        });
  return { hidden, head: model.head, chunkRows, frozen };
}
