/**
 * Pairwise comparison: two models answer the same prompts; people (a blind A/B session) or a
 * model judge say which answer is better. Outcomes are kept relative to `models[0]` and
 * `models[1]` whatever side an answer was shown on.
 */
import type { Conversation } from '@webtune/data';
import { type CausalLM, generate } from '@webtune/nn';
import { noGrad } from '@webtune/tensors';
import { EvaluationError } from '../errors.js';
import type { PredictOptions } from '../predict/predict.js';
import { asConversation, type EvalTokenizer, promptEncoderFor } from '../prompt-encoding.js';

/** One prompt and the two models' answers (`answers[i]` from `models[i]`). */
export interface ComparisonPair {
  id: number;
  prompt: string | Conversation;
  answers: [string, string];
}

/** Pairs of answers from two models. `models[1]` is the challenger (e.g. the fine-tuned model). */
export interface ComparisonSet {
  models: [string, string];
  pairs: ComparisonPair[];
}

/** The verdict on one pair: the index of the better model, or null for a tie. */
export interface PairOutcome {
  id: number;
  winner: 0 | 1 | null;
}

/**
 * A model to compare. `run` wraps every use of `model` (e.g. `fn => peft.withAdaptersDisabled(fn)`
 * for the base model inside a PeftModel): one copy of the weights serves both sides.
 */
export interface ModelVariant {
  name: string;
  model: CausalLM;
  run?: <R>(fn: () => Promise<R>) => Promise<R>;
}

/** What `adapterVariants` needs: a PeftModel of @webtune/peft fits. */
export interface AdaptedModel {
  readonly model: CausalLM;
  withAdaptersDisabled<R>(fn: () => R): R;
}

/** Base (adapters off) and tuned (adapters on) variants of one PeftModel, without a second copy. */
export function adapterVariants(
  peft: AdaptedModel,
  names: [string, string] = ['base', 'tuned'],
): [ModelVariant, ModelVariant] {
  return [
    { name: names[0], model: peft.model, run: (fn) => peft.withAdaptersDisabled(fn) },
    { name: names[1], model: peft.model },
  ];
}

/** Runs `fn` the way a variant asks (inside its `run`, when it has one). */
export function withVariant<R>(variant: ModelVariant, fn: () => Promise<R>): Promise<R> {
  return variant.run ? variant.run(fn) : fn();
}

/**
 * Both models answer every prompt (greedy unless sampling options say otherwise); prompts go
 * through the chat template and are generated `batchSize` at a time.
 */
export async function collectAnswers(
  variants: readonly [ModelVariant, ModelVariant],
  tokenizer: EvalTokenizer,
  prompts: readonly (string | Conversation)[],
  options: Omit<PredictOptions, 'metrics'> = {},
): Promise<ComparisonSet> {
  if (variants[0].name === variants[1].name) {
    throw new EvaluationError(`the two models need different names, both are "${variants[0].name}"`);
  }
  const encoder = promptEncoderFor(tokenizer, options);
  const ids = prompts.map((prompt) => encoder.encodePrompt(asConversation(prompt)));
  const {
    batchSize = 8,
    onProgress,
    prompts: _prompts,
    template: _template,
    enableThinking: _thinking,
    ...generation
  } = options;
  const answers: string[][] = [[], []];
  for (const side of [0, 1] as const) {
    await withVariant(variants[side], async () => {
      for (let start = 0; start < ids.length; start += batchSize) {
        const results = await noGrad(() =>
          generate(variants[side].model, tokenizer, ids.slice(start, start + batchSize), {
            maxNewTokens: 128,
            ...generation,
          }),
        );
        answers[side].push(...results.map((result) => result.text));
        onProgress?.({ done: answers[0].length + answers[1].length, total: 2 * ids.length });
      }
    });
  }
  return {
    models: [variants[0].name, variants[1].name],
    pairs: prompts.map((prompt, id) => ({ id, prompt, answers: [answers[0][id], answers[1][id]] })),
  };
}

/** The text of a prompt: the last user turn of a conversation. */
export function promptText(prompt: string | Conversation): string {
  if (typeof prompt === 'string') return prompt;
  const users = prompt.turns.filter((turn) => turn.role === 'user');
  return users.length > 0 ? users[users.length - 1].content : '';
}
