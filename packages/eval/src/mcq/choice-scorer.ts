/**
 * What multiple-choice scoring needs from a model: for a batch of prompts, the logits of a few
 * candidate tokens at the position after each prompt. `modelChoiceScorer` runs a CausalLM on the
 * device; tests and other backends give any object with the same method.
 */
import type { CausalLM } from '@webtune/nn';
import { matmul, noGrad } from '@webtune/tensors';
import { EvaluationError } from '../errors.js';

/** Scores the next token of many prompts at once. */
export interface ChoiceScorer {
  /**
   * Logits of `candidates` (token ids) as the next token after each prompt: one array of
   * `candidates.length` values per prompt, in order.
   */
  scoreNextTokens(
    prompts: readonly (readonly number[])[],
    candidates: readonly number[],
  ): Promise<Float32Array[]>;
  /** Longest prompt the model takes, in tokens (longer prompts are shortened before scoring). */
  readonly maxLength?: number;
}

/**
 * A `ChoiceScorer` over a CausalLM (pass `peftModel.model` for a model with adapters; wrap the
 * evaluation in `withAdaptersDisabled` for the base). The prompts of one call go through one
 * forward pass: left-padded to the longest, with a padding mask and per-row positions, logits at
 * the last position only; the candidate columns are picked on the device by a product with a
 * one-hot matrix, so only `prompts x candidates` numbers come back.
 */
export function modelChoiceScorer(model: CausalLM): ChoiceScorer {
  const { config, device } = model;
  return {
    maxLength: config.maxPositionEmbeddings,
    async scoreNextTokens(prompts, candidates) {
      if (prompts.length === 0) return [];
      for (const id of candidates) {
        if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
          throw new EvaluationError(
            `candidate token id ${id} is outside the vocabulary of ${config.vocabSize}`,
          );
        }
      }
      const batch = prompts.length;
      const longest = Math.max(...prompts.map((ids) => ids.length));
      if (prompts.some((ids) => ids.length === 0)) throw new EvaluationError('a prompt has no tokens');
      const padding = prompts.map((ids) => longest - ids.length);
      const padId = config.padTokenId ?? 0;
      const ids = new Int32Array(batch * longest);
      const mask = new Int32Array(batch * longest);
      for (let row = 0; row < batch; row++) {
        ids.fill(padId, row * longest, row * longest + padding[row]);
        ids.set(prompts[row], row * longest + padding[row]);
        mask.fill(1, row * longest + padding[row], (row + 1) * longest);
      }
      const positions = padding.map((pad) => Array.from({ length: longest }, (_, j) => Math.max(0, j - pad)));
      const selector = new Float32Array(candidates.length * config.vocabSize);
      candidates.forEach((id, index) => {
        selector[index * config.vocabSize + id] = 1;
      });
      const values = await noGrad(() =>
        device.scope(async () => {
          const input = device.fromArray(ids, [batch, longest], 'i32');
          const logits = model.forward(input, {
            positions,
            paddingMask: padding.some((pad) => pad > 0)
              ? device.fromArray(mask, [batch, longest], 'i32')
              : undefined,
            logits: 'last',
          });
          const picked = matmul(
            logits.reshape([batch, config.vocabSize]),
            device.fromArray(
              selector,
              [candidates.length, config.vocabSize],
              logits.dtype === 'f16' ? 'f16' : 'f32',
            ),
            { transposeB: true },
          );
          return (await picked.toArray()) as Float32Array;
        }),
      );
      return prompts.map((_, row) => values.slice(row * candidates.length, (row + 1) * candidates.length));
    },
  };
}
