/**
 * Eval's prompts go through @webtune/data's `PromptEncoder`, the encoder training, chat, serve and the web
 * app use, so a model is evaluated on the ids it was trained on.
 */
import type { ChatTemplate, Conversation, TokenizerLike } from '@webtune/data';
import { PromptEncoder } from '@webtune/data';

/** A tokenizer for evaluation: `Tokenizer` of @webtune/tokenizers fits. */
export type EvalTokenizer = TokenizerLike & { readonly addBosToken?: boolean };

/** How prompts are encoded. */
export interface PromptOptions {
  /** The prompt encoder to use (the one the model was trained with). Else one is made from `template`. */
  prompts?: PromptEncoder;
  /**
   * Chat template: a LLaMA-Factory name (`fewshot`, `qwen3`, `llama3`...), `auto` (the tokenizer's Jinja
   * template), Jinja text or a `ChatTemplate`. Default: LLaMA-Factory's choice (the tokenizer's
   * chat_template parsed, else `empty`).
   */
  template?: string | ChatTemplate;
  /** Thinking switch of reasoning templates. */
  enableThinking?: boolean;
}

/** The prompt encoder `options` name for a tokenizer. */
export function promptEncoderFor(tokenizer: EvalTokenizer, options: PromptOptions = {}): PromptEncoder {
  return (
    options.prompts ??
    new PromptEncoder(tokenizer, { template: options.template, enableThinking: options.enableThinking })
  );
}

/** A one-turn conversation from a text, or the conversation as given. */
export function asConversation(prompt: string | Conversation): Conversation {
  return typeof prompt === 'string' ? { turns: [{ role: 'user', content: prompt }] } : prompt;
}
