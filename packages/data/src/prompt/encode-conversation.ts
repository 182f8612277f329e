/**
 * A conversation as token ids through any chat template: LLaMA-Factory templates encode piece by piece
 * (as LLaMA-Factory does); Jinja templates render text segments that are tokenized pair by pair (as
 * Transformers' `apply_chat_template` then `encode` does).
 */
import type { Conversation } from '../formats/types.js';
import {
  type EncodedTurns,
  type EncodeMode,
  LlamaFactoryTemplate,
} from '../templates/llama-factory/llama-factory-template.js';
import type { ChatTemplate } from '../templates/types.js';
import { type TokenPair, tokenizeSegments } from '../tokenize/supervised.js';
import type { TokenizerLike } from '../tokenize/tokenizer-like.js';

/** Options of `encodeConversation`. */
export interface EncodeConversationOptions {
  /** `multiturn` (default), `oneturn` or `generation`; see `EncodeMode`. */
  mode?: EncodeMode;
  /** LLaMA-Factory's `mask_history` (reasoning templates drop earlier thoughts). */
  maskHistory?: boolean;
}

/**
 * The conversation as one prompt and one response (the last): earlier turns become prompt, as in
 * LLaMA-Factory's preference and KTO encoding.
 */
function oneTurn(pairs: readonly TokenPair[]): TokenPair {
  const list = [...pairs];
  const trailing = list.length > 1 && list[list.length - 1].responseIds.length === 0 ? list.pop() : undefined;
  const last = list[list.length - 1];
  const promptIds: number[] = [];
  for (const pair of list.slice(0, -1)) promptIds.push(...pair.promptIds, ...pair.responseIds);
  promptIds.push(...last.promptIds);
  return {
    promptIds,
    responseIds: trailing ? [...last.responseIds, ...trailing.promptIds] : last.responseIds,
    trainable: last.trainable,
  };
}

/** Encodes a conversation. Throws `TemplateError` when the template cannot render it. */
export function encodeConversation(
  template: ChatTemplate,
  conversation: Conversation,
  tokenizer: TokenizerLike,
  options: EncodeConversationOptions = {},
): EncodedTurns {
  if (template instanceof LlamaFactoryTemplate) return template.encode(conversation, tokenizer, options);
  const mode = options.mode ?? 'multiturn';
  const rendered = template.render(conversation, { addGenerationPrompt: mode === 'generation' });
  const pairs = tokenizeSegments(rendered.segments, tokenizer);
  if (mode === 'generation') {
    const promptIds = pairs.flatMap((pair) => [...pair.promptIds, ...pair.responseIds]);
    return { pairs: [{ promptIds, responseIds: [], trainable: false }], warnings: rendered.warnings };
  }
  return { pairs: mode === 'oneturn' ? [oneTurn(pairs)] : pairs, warnings: rendered.warnings };
}
