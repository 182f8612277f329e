/** The shared frame of the built-in templates: option handling, checks, and the renderer signature. */
import { type Conversation, isPromptSide } from '../../formats/types.js';
import { withoutReasoning } from '../messages.js';
import {
  type ChatTemplate,
  type RenderedConversation,
  type RenderOptions,
  SegmentWriter,
  TemplateError,
  type TemplateTokens,
} from '../types.js';

/** Options of the built-in templates. */
export interface BuiltinTemplateOptions extends TemplateTokens {
  /**
   * Qwen3: whether the model thinks. `false` puts the empty think block into the prompt and removes
   * reasoning blocks from assistant turns (as LLaMA-Factory does). Default true.
   */
  enableThinking?: boolean;
  /** Llama 3: the "Today Date" printed in the system header. Default 26 Jul 2024. */
  date?: Date;
}

/** What a renderer gets besides the conversation. */
export interface RenderContext {
  name: string;
  options: BuiltinTemplateOptions;
  addGenerationPrompt: boolean;
  writer: SegmentWriter;
  warnings: string[];
}

/** Writes a conversation into `context.writer`. */
export type Renderer = (conversation: Conversation, context: RenderContext) => void;

/** A built-in template: a name and a renderer written in TypeScript. */
export class BuiltinChatTemplate implements ChatTemplate {
  readonly name: string;
  private readonly renderer: Renderer;
  private readonly options: BuiltinTemplateOptions;

  constructor(name: string, renderer: Renderer, options: BuiltinTemplateOptions = {}) {
    this.name = name;
    this.renderer = renderer;
    this.options = options;
  }

  render(conversation: Conversation, options: RenderOptions = {}): RenderedConversation {
    const addGenerationPrompt = options.addGenerationPrompt ?? false;
    checkShape(conversation, addGenerationPrompt);
    const prepared = this.options.enableThinking === false ? withoutReasoning(conversation) : conversation;
    const context: RenderContext = {
      name: this.name,
      options: this.options,
      addGenerationPrompt,
      writer: new SegmentWriter(),
      warnings: [],
    };
    this.renderer(prepared, context);
    if (addGenerationPrompt) {
      // A generation prompt is all prompt, earlier answers included.
      const text = context.writer.segments.map((segment) => segment.text).join('');
      return { segments: [{ kind: 'prompt', text }], warnings: context.warnings };
    }
    return { segments: context.writer.segments, warnings: context.warnings };
  }
}

/** Turns must alternate prompt side / response side from a prompt-side start, and end on the right side. */
function checkShape(conversation: Conversation, addGenerationPrompt: boolean): void {
  const { turns } = conversation;
  turns.forEach((turn, index) => {
    if (isPromptSide(turn.role) !== (index % 2 === 0)) {
      throw new TemplateError(
        `turn ${index + 1} (${turn.role}) breaks the user/assistant alternation`,
        index,
      );
    }
  });
  const last = turns[turns.length - 1];
  if (addGenerationPrompt && (last === undefined || !isPromptSide(last.role))) {
    throw new TemplateError('a generation prompt needs a conversation that ends with a user-side turn');
  }
  if (!addGenerationPrompt && (last === undefined || isPromptSide(last.role))) {
    throw new TemplateError('a training conversation must end with an assistant-side turn');
  }
}

/** Throws when a conversation has tools or tool turns, for templates without a tool format. */
export function requireNoTools(conversation: Conversation, name: string): void {
  const index = conversation.turns.findIndex(
    (turn) => turn.role === 'function_call' || turn.role === 'observation',
  );
  if (index >= 0) {
    throw new TemplateError(
      `the ${name} template has no tool-call format (turn ${index + 1} is ${conversation.turns[index].role}); use qwen, qwen3, llama3 or mistral, or the model's own chat_template`,
      index,
    );
  }
  if (conversation.tools && conversation.tools.length > 0) {
    throw new TemplateError(`the ${name} template has no tool-call format, but the conversation lists tools`);
  }
}

/** Whether a turn is trained (loss weight not 0). */
export function trainable(conversation: Conversation, index: number): boolean {
  return conversation.turns[index].lossWeight !== 0;
}
