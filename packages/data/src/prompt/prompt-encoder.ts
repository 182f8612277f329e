/**
 * The one prompt encoder: every place that turns a conversation into token ids (training data, chat,
 * serve, predict, eval, the web app) goes through it, so a model sees the same ids wherever it runs.
 *
 * Template choice follows LLaMA-Factory (see `resolveChatTemplate`): a LLaMA-Factory template name; no
 * name: the tokenizer's chat_template parsed, else `empty`; `auto`: the tokenizer's Jinja template as
 * Transformers renders it. BOS and EOS are written by the template alone (no tokenizer-added specials).
 */
import type { Conversation } from '../formats/types.js';
import type { EncodedTurns } from '../templates/llama-factory/llama-factory-template.js';
import { LlamaFactoryTemplate } from '../templates/llama-factory/llama-factory-template.js';
import { type ResolveTemplateOptions, resolveChatTemplate } from '../templates/resolve.js';
import type { ChatTemplate } from '../templates/types.js';
import { renderText } from '../templates/types.js';
import { type TokenizerLike, tokenText } from '../tokenize/tokenizer-like.js';
import { type EncodeConversationOptions, encodeConversation } from './encode-conversation.js';

/** Options of `PromptEncoder`: the template and LLaMA-Factory's data arguments that change it. */
export interface PromptEncoderOptions extends ResolveTemplateOptions {
  /**
   * A LLaMA-Factory template name (`qwen3`, `llama3`, `default`...), `auto` (the tokenizer's Jinja
   * template), Jinja text, or a `ChatTemplate`. Undefined: LLaMA-Factory's choice.
   */
  template?: string | ChatTemplate;
}

/** End-of-turn marks of Jinja templates that end an answer when the tokenizer has them. */
const JINJA_END_MARKS = ['<|im_end|>', '<|eot_id|>', '<end_of_turn>', '<|end|>'];

/** Conversations to token ids through one template and tokenizer. */
export class PromptEncoder {
  readonly template: ChatTemplate;

  constructor(
    readonly tokenizer: TokenizerLike,
    options: PromptEncoderOptions = {},
  ) {
    this.template = resolveChatTemplate(options.template, tokenizer, options);
  }

  /** Prompt/response ids of a conversation that ends with an answer, as training encodes it. */
  encodeConversation(conversation: Conversation, options: EncodeConversationOptions = {}): EncodedTurns {
    return encodeConversation(this.template, conversation, this.tokenizer, options);
  }

  /** Ids of the prompt the model answers, for a conversation that ends with a user (or tool) turn. */
  encodePrompt(conversation: Conversation): number[] {
    return encodeConversation(this.template, conversation, this.tokenizer, { mode: 'generation' }).pairs[0]
      .promptIds;
  }

  /** The prompt's text (BOS/EOS as their token text), for display. */
  renderPrompt(conversation: Conversation): string {
    return renderText(this.template, conversation, { addGenerationPrompt: true });
  }

  /** Ids that end an answer: EOS and the template's stop words. */
  stopTokenIds(): number[] {
    if (this.template instanceof LlamaFactoryTemplate) return this.template.stopTokenIds(this.tokenizer);
    const ids = new Set<number>();
    const eos = this.tokenizer.eosTokenId;
    if (eos !== undefined && eos !== null) ids.add(eos);
    for (const mark of JINJA_END_MARKS) {
      const id = this.tokenizer.tokenToId(mark);
      if (id !== undefined) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  }

  /** Texts that end an answer: the stop tokens' texts. */
  stopStrings(): string[] {
    const texts = this.stopTokenIds().map((id) => tokenText(this.tokenizer, id));
    return [...new Set(texts.filter((text): text is string => text !== undefined && text.length > 0))];
  }
}
