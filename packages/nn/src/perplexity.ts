import { ModelError } from './errors.js';
import * as F from './functional.js';
import type { CausalLM } from './models/llama.js';
import type { TextTokenizer } from './tokenizer.js';

export interface PerplexityOptions {
  /**
   * Most tokens the model sees at once (default: max_position_embeddings, capped at 1024).
   * Texts longer than this go through overlapping windows.
   */
  window?: number;
  /**
   * Tokens between the starts of two windows, below `window` so that windows overlap and every
   * token but the first has context (default window / 2).
   */
  stride?: number;
}

export interface PerplexityResult {
  /** exp(meanLoss). */
  perplexity: number;
  /** Mean negative log-likelihood in nats over the scored tokens. */
  meanLoss: number;
  /** Tokens scored: every token after the first. */
  tokens: number;
  /** Forward passes run. */
  windows: number;
}

/**
 * Perplexity of `text` under `model`, with the convention used across webtune:
 *
 * - The text is tokenized whole with the tokenizer's default special tokens (so BOS leads where
 *   the tokenizer adds one).
 * - Every token after the first is scored once, by the model given the tokens before it; the
 *   loss is the mean negative log-likelihood over those N - 1 tokens, and the perplexity its exp.
 * - A text longer than `window` tokens is read in windows of `window` tokens whose starts are
 *   `stride` apart (default window / 2). Each window scores only the tokens no earlier window
 *   scored, so every token after the first window has at least window - stride tokens of
 *   context. stride = window - 1 gives the fewest windows (faster, a higher perplexity).
 *
 * Logits are computed a block of rows at a time and fused with the loss on the device; only one
 * number per block comes back.
 */
export async function perplexity(
  model: CausalLM,
  tokenizer: TextTokenizer,
  text: string,
  options: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const ids = [...tokenizer.encode(text, { addSpecialTokens: true })];
  return perplexityOfIds(model, ids, options);
}

/** `perplexity` of a token sequence that is already tokenized. */
export async function perplexityOfIds(
  model: CausalLM,
  ids: readonly number[],
  options: PerplexityOptions = {},
): Promise<PerplexityResult> {
  if (ids.length < 2) throw new ModelError(`perplexity needs at least 2 tokens, the text has ${ids.length}`);
  const window = options.window ?? Math.min(model.config.maxPositionEmbeddings, 1024);
  const stride = options.stride ?? Math.max(1, Math.floor(window / 2));
  if (!Number.isInteger(window) || window < 2)
    throw new ModelError(`perplexity: window must be an integer >= 2, got ${window}`);
  if (!Number.isInteger(stride) || stride < 1 || stride >= window) {
    throw new ModelError(
      `perplexity: stride must be an integer in [1, window - 1], got ${stride} (window ${window})`,
    );
  }
  const device = model.device;
  const vocab = model.config.vocabSize;
  // Rows of logits per block: keep one block's logits under 64 MiB.
  const rowsPerBlock = Math.max(1, Math.floor((64 * 2 ** 20) / (vocab * 4)));
  let total = 0;
  let scored = 0;
  let windows = 0;
  let previousEnd = 1; // token 0 is never scored
  for (let begin = 0; previousEnd < ids.length; begin += stride) {
    const end = Math.min(begin + window, ids.length);
    // Score tokens [previousEnd, end): logits at position p - 1 predict token p.
    const first = previousEnd - begin - 1;
    const last = end - begin - 1;
    const windowIds = ids.slice(begin, end);
    total += await device.scope(async () => {
      const input = device.fromArray(windowIds, [1, windowIds.length], 'i32');
      const hidden = model.hiddenStates(input);
      const hiddenSize = hidden.shape[2];
      let sum = 0;
      for (let row = first; row < last; row += rowsPerBlock) {
        const rows = Math.min(rowsPerBlock, last - row);
        const block = F.slice(hidden, [0, row, 0], [1, row + rows, hiddenSize]).reshape([rows, hiddenSize]);
        const logits = model.logitsFromHidden(block);
        const targets = device.fromArray(windowIds.slice(row + 1, row + 1 + rows), [rows], 'i32');
        sum += await F.crossEntropySum(logits, targets).item();
      }
      return sum;
    });
    scored += end - previousEnd;
    previousEnd = end;
    windows++;
  }
  const meanLoss = total / scored;
  return { perplexity: Math.exp(meanLoss), meanLoss, tokens: scored, windows };
}
