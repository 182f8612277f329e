/** Rendering conversations through a chat template and tokenizing them the same way everywhere in eval. */
import type { ChatTemplate, Conversation, TokenizerLike } from '@webtune/data';
import { renderText, resolveChatTemplate } from '@webtune/data';
import { fewshotTemplate } from './mcq/fewshot-template.js';

/** A tokenizer for evaluation: `Tokenizer` of @webtune/tokenizers fits. */
export type EvalTokenizer = TokenizerLike & { readonly addBosToken?: boolean };

/** How prompts are rendered and tokenized. */
export interface PromptOptions {
  /**
   * Chat template: a built-in name (`qwen3`, `llama3`, `chatml`...), `fewshot`, Jinja text or a
   * `ChatTemplate`. Default: the tokenizer's own `chat_template`, else `fewshot` (plain text with
   * a blank line after each answer, for base models).
   */
  template?: string | ChatTemplate;
  /**
   * Add the tokenizer's default special tokens (BOS) to the rendered prompt. `auto` (default): yes
   * unless the template already wrote the BOS text.
   */
  addSpecialTokens?: boolean | 'auto';
}

/** The template `PromptOptions.template` names for a tokenizer. */
export function resolveEvalTemplate(
  template: string | ChatTemplate | undefined,
  tokenizer: TokenizerLike,
): ChatTemplate {
  if (template === 'fewshot' || (template === undefined && !tokenizer.chatTemplate)) return fewshotTemplate;
  return resolveChatTemplate(template, tokenizer);
}

/** Renders conversations for generation (the assistant header appended) and tokenizes them. */
export class PromptEncoder {
  readonly template: ChatTemplate;
  private readonly bosText: string;

  constructor(
    readonly tokenizer: EvalTokenizer,
    private readonly options: PromptOptions = {},
  ) {
    this.template = resolveEvalTemplate(options.template, tokenizer);
    const bos = tokenizer.bosTokenId;
    this.bosText = bos != null ? tokenizer.decode([bos], { skipSpecialTokens: false }) : '';
  }

  /** The prompt text of a conversation ending with a user turn. */
  render(conversation: Conversation): string {
    return renderText(this.template, conversation, { addGenerationPrompt: true });
  }

  /** Token ids of rendered text, with BOS as `addSpecialTokens` says. */
  encode(text: string): number[] {
    const setting = this.options.addSpecialTokens ?? 'auto';
    const add = setting === 'auto' ? !(this.bosText.length > 0 && text.startsWith(this.bosText)) : setting;
    return [...this.tokenizer.encode(text, { addSpecialTokens: add })];
  }
}

/** A one-turn conversation from a text, or the conversation as given. */
export function asConversation(prompt: string | Conversation): Conversation {
  return typeof prompt === 'string' ? { turns: [{ role: 'user', content: prompt }] } : prompt;
}
