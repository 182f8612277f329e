/**
 * Model judges. A judge reads a prompt and two answers labelled A and B and names the better one
 * or a tie. Every pair is judged twice, once in each order, to cancel position bias: a model wins
 * when neither order prefers the other and at least one prefers it; orders that disagree make a
 * tie (and are counted, as a measure of the judge's position bias).
 */
import type { CausalLM } from '@webtune/nn';
import { generate } from '@webtune/nn';
import { noGrad } from '@webtune/tensors';
import { EvaluationError } from '../errors.js';
import { type EvalTokenizer, type PromptOptions, promptEncoderFor } from '../prompt-encoding.js';
import { type ComparisonSet, type PairOutcome, promptText } from './comparison.js';
import {
  type ChatEndpoint,
  type ChatRequestOptions,
  chatCompletion,
  type JudgeMessage,
} from './openai-client.js';
import { summarizeOutcomes, type WinRateOptions, type WinRateSummary } from './win-rate.js';

/** Something that answers a chat: a remote endpoint or a local model. */
export type JudgeBackend = (messages: JudgeMessage[]) => Promise<string>;

/** A judge's verdict on one ordering: the answer shown as A, as B, a tie, or unreadable. */
export type Verdict = 'A' | 'B' | 'tie' | 'invalid';

/** The instructions given to the judge. */
export const JUDGE_SYSTEM_PROMPT =
  'You are a fair and careful judge of AI assistants. You will see a user request and two answers, ' +
  'Answer A and Answer B. Decide which answer serves the user better: correct, helpful, relevant, clear. ' +
  'The order of the answers and their length must not sway you. Explain your reasons in a few sentences, ' +
  'then end with the verdict on its own line: [[A]] if Answer A is better, [[B]] if Answer B is better, ' +
  'or [[C]] if they are equally good or equally bad.';

/** The judge's user message for one ordering. */
export function judgeMessages(prompt: string, answerA: string, answerB: string): JudgeMessage[] {
  return [
    { role: 'system', content: JUDGE_SYSTEM_PROMPT },
    {
      role: 'user',
      content: `[User request]\n${prompt}\n\n[Answer A]\n${answerA}\n[End of Answer A]\n\n[Answer B]\n${answerB}\n[End of Answer B]`,
    },
  ];
}

/** Reads the last `[[A]]`, `[[B]]`, `[[C]]` or `[[tie]]` in a judge's reply. */
export function parseVerdict(reply: string): Verdict {
  const matches = [...reply.matchAll(/\[\[\s*(A|B|C|tie)\s*\]\]/gi)];
  if (matches.length === 0) return 'invalid';
  const mark = matches[matches.length - 1][1].toUpperCase();
  return mark === 'A' ? 'A' : mark === 'B' ? 'B' : 'tie';
}

/** A judge over an OpenAI-compatible endpoint (base URL, model, key). */
export function endpointJudge(endpoint: ChatEndpoint, options: ChatRequestOptions = {}): JudgeBackend {
  return (messages) => chatCompletion(endpoint, messages, { maxTokens: 1024, ...options });
}

/** A judge that is a local model: the messages go through its chat template and are answered greedily. */
export function localModelJudge(
  model: CausalLM,
  tokenizer: EvalTokenizer,
  options: PromptOptions & { maxNewTokens?: number } = {},
): JudgeBackend {
  const encoder = promptEncoderFor(tokenizer, options);
  return async (messages) => {
    const system = messages.find((message) => message.role === 'system')?.content;
    const turns = messages
      .filter((message) => message.role !== 'system')
      .map((message) => ({ role: message.role as 'user' | 'assistant', content: message.content }));
    const ids = encoder.encodePrompt({ system, turns });
    const [result] = await noGrad(() =>
      generate(model, tokenizer, [ids], { maxNewTokens: options.maxNewTokens ?? 256 }),
    );
    return result.text;
  };
}

/** Both orderings of one pair and what they add up to. */
export interface JudgedPair extends PairOutcome {
  /** Verdict with models[0]'s answer shown as A, and with models[1]'s shown as A. */
  verdicts: [Verdict, Verdict];
  replies: [string, string];
  /** The two orderings did not contradict each other. */
  consistent: boolean;
}

/** Options of `judgePairs`. */
export interface JudgeOptions extends WinRateOptions {
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
  /** Called after each pair. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** Every pair's verdicts and the tally. */
export interface JudgeResult {
  pairs: JudgedPair[];
  /** Outcomes of the pairs with two readable verdicts. */
  outcomes: PairOutcome[];
  summary: WinRateSummary;
  /** Pairs whose orderings contradicted each other (judged ties). */
  inconsistent: number;
  /** Pairs left out because a reply held no verdict. */
  invalid: number;
  /** Share of decisive verdicts (not ties) that chose the answer shown first: 0.5 means no position bias. */
  firstPositionRate: number;
}

/** The winner of a pair from its two orderings (see the module note); undefined if a verdict is invalid. */
export function combineVerdicts(
  verdicts: [Verdict, Verdict],
): { winner: 0 | 1 | null; consistent: boolean } | undefined {
  if (verdicts.includes('invalid')) return undefined;
  // Ordering 0 shows models[0] as A; ordering 1 shows models[1] as A.
  const preferred = [
    verdicts[0] === 'tie' ? null : verdicts[0] === 'A' ? 0 : 1,
    verdicts[1] === 'tie' ? null : verdicts[1] === 'A' ? 1 : 0,
  ];
  const chosen = preferred.filter((value) => value !== null);
  if (chosen.length === 0) return { winner: null, consistent: true };
  if (chosen.length === 2 && chosen[0] !== chosen[1]) return { winner: null, consistent: false };
  return { winner: chosen[0] as 0 | 1, consistent: true };
}

/** Judges every pair in both orders and tallies the outcomes with the challenger's win rate. */
export async function judgePairs(
  set: ComparisonSet,
  judge: JudgeBackend,
  options: JudgeOptions = {},
): Promise<JudgeResult> {
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new EvaluationError(`concurrency must be a positive integer, got ${concurrency}`);
  const judged: JudgedPair[] = new Array(set.pairs.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < set.pairs.length) {
      const index = next++;
      const pair = set.pairs[index];
      const prompt = promptText(pair.prompt);
      const replies = (await Promise.all([
        judge(judgeMessages(prompt, pair.answers[0], pair.answers[1])),
        judge(judgeMessages(prompt, pair.answers[1], pair.answers[0])),
      ])) as [string, string];
      const verdicts: [Verdict, Verdict] = [parseVerdict(replies[0]), parseVerdict(replies[1])];
      const combined = combineVerdicts(verdicts);
      judged[index] = {
        id: pair.id,
        winner: combined?.winner ?? null,
        verdicts,
        replies,
        consistent: combined?.consistent ?? false,
      };
      done++;
      options.onProgress?.({ done, total: set.pairs.length });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, set.pairs.length) }, worker));
  const valid = judged.filter((pair) => !pair.verdicts.includes('invalid'));
  const outcomes = valid.map((pair) => ({ id: pair.id, winner: pair.winner }));
  const readable = judged.flatMap((pair) => pair.verdicts.filter((verdict) => verdict !== 'invalid'));
  const decisive = readable.filter((verdict) => verdict !== 'tie');
  return {
    pairs: judged,
    outcomes,
    summary: summarizeOutcomes(set.models, outcomes, options),
    inconsistent: valid.filter((pair) => !pair.consistent).length,
    invalid: judged.length - valid.length,
    firstPositionRate:
      decisive.length > 0 ? decisive.filter((verdict) => verdict === 'A').length / decisive.length : 0,
  };
}
