/**
 * `reward_model_type: api` as LLaMA-Factory runs it: each answer is decoded together with its query
 * (special tokens kept) and the texts are POSTed as JSON `{"model": "model", "messages": [text, ...]}`
 * to the `reward_model` URL, which replies `{"scores": [number, ...]}`, one score per text in order.
 * Any other reply is an error naming the URL and what was wrong; a score is never guessed.
 */
import type { PpoSample } from './ppo-rollout.js';
import type { RewardScorer } from './reward-scorer.js';

/** A reward server that could not be reached or gave a reply other than the scores asked for. */
export class RewardApiError extends Error {
  override name = 'RewardApiError';
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(`reward_model ${url}: ${message}`);
  }
}

export interface ApiRewardOptions {
  /** The reward server's URL (LLaMA-Factory's `reward_model` with `reward_model_type: api`). */
  url: string;
  /** Token ids to text, special tokens kept (LLaMA-Factory decodes with skip_special_tokens=False). */
  decode: (ids: number[]) => string;
  /** How long one request may take. Default 300 s. */
  timeoutMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** The texts LLaMA-Factory sends for these samples: query and answer decoded together. */
export function rewardRequestTexts(
  samples: readonly PpoSample[],
  decode: (ids: number[]) => string,
): string[] {
  return samples.map((sample) => decode([...sample.query, ...sample.response]));
}

/** A scorer that asks the reward server at `options.url`. */
export function apiRewardScorer(options: ApiRewardOptions): RewardScorer {
  const { url } = options;
  const post = options.fetch ?? globalThis.fetch;
  return async (samples) => {
    const messages = rewardRequestTexts(samples, options.decode);
    let response: Response;
    try {
      response = await post(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'model', messages }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 300_000),
      });
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
      throw new RewardApiError(url, `cannot be reached (${cause})`);
    }
    const text = await response.text();
    const excerpt = text.length > 200 ? `${text.slice(0, 200)}...` : text;
    if (!response.ok) {
      throw new RewardApiError(url, `answered HTTP ${response.status} ${response.statusText}: ${excerpt}`);
    }
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      throw new RewardApiError(url, `the reply is not JSON: ${JSON.stringify(excerpt)}`);
    }
    const scores = (reply as { scores?: unknown } | null)?.scores;
    if (!Array.isArray(scores)) {
      throw new RewardApiError(
        url,
        `expected a reply {"scores": [${samples.length} numbers]}, got ${excerpt}`,
      );
    }
    if (scores.length !== samples.length) {
      throw new RewardApiError(url, `${scores.length} scores for ${samples.length} texts`);
    }
    // LLaMA-Factory reads each score as a float tensor: a number, or a one-number list.
    return scores.map((score, index) => {
      const value = Array.isArray(score) && score.length === 1 ? score[0] : score;
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new RewardApiError(url, `scores[${index}] is ${JSON.stringify(score)}, not a finite number`);
      }
      return value;
    });
  };
}
