/** What a chat template is to the rest of the package: a conversation in, text segments out. */
import type { Conversation } from '../formats/types.js';

/**
 * A piece of rendered text. `response` segments are what the assistant writes for one response-side
 * turn (with the template's end-of-turn marks); everything else is `prompt`.
 */
export interface TemplateSegment {
  kind: 'prompt' | 'response';
  text: string;
  /** For response segments: index of the turn in `conversation.turns`. */
  turn?: number;
  /** For response segments: false when the turn's loss weight is 0. */
  trainable?: boolean;
}

/** A rendered conversation: segments that join to the full text, and remarks (e.g. a dropped system prompt). */
export interface RenderedConversation {
  segments: TemplateSegment[];
  warnings: string[];
}

/** Options of `ChatTemplate.render`. */
export interface RenderOptions {
  /**
   * Render a conversation that ends with a prompt-side turn and append the header the model completes
   * (`<|im_start|>assistant\n`...). Without it the conversation must end with a response-side turn.
   */
  addGenerationPrompt?: boolean;
}

/** A chat template, built-in or from a model's Jinja `chat_template`. */
export interface ChatTemplate {
  /** Name shown in reports: a built-in name, or `jinja` / the model's name. */
  readonly name: string;
  /** Renders a conversation into segments. Throws `TemplateError` for one the template cannot render. */
  render(conversation: Conversation, options?: RenderOptions): RenderedConversation;
}

/** The text a template renders, segments joined. */
export function renderText(
  template: ChatTemplate,
  conversation: Conversation,
  options?: RenderOptions,
): string {
  return template
    .render(conversation, options)
    .segments.map((segment) => segment.text)
    .join('');
}

/** A conversation a template cannot render (unsupported tools, roles, or the Jinja template raised). */
export class TemplateError extends Error {
  /** Index of the turn at fault in `conversation.turns`, when one is. */
  readonly turn?: number;

  constructor(message: string, turn?: number) {
    super(message);
    this.name = 'TemplateError';
    this.turn = turn;
  }
}

/** Special-token strings the templates write (`bos_token`, `eos_token` in Jinja). */
export interface TemplateTokens {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
}

/** Collects segments, merging neighbours of the same kind. */
export class SegmentWriter {
  private readonly list: TemplateSegment[] = [];

  /** Appends prompt text. */
  prompt(text: string): void {
    if (text.length === 0) return;
    const last = this.list[this.list.length - 1];
    if (last && last.kind === 'prompt') last.text += text;
    else this.list.push({ kind: 'prompt', text });
  }

  /** Appends the response text of turn `turn`. */
  response(text: string, turn: number, trainable = true): void {
    const last = this.list[this.list.length - 1];
    if (last && last.kind === 'response' && last.turn === turn) last.text += text;
    else this.list.push({ kind: 'response', text, turn, trainable });
  }

  /** The segments written so far. */
  get segments(): TemplateSegment[] {
    return this.list;
  }
}
