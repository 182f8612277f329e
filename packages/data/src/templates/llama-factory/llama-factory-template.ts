/**
 * A LLaMA-Factory template at work: a conversation becomes one slot list per message (its
 * `Template._encode`), thought blocks are handled as its `ReasoningTemplate` does, and the slots become
 * token ids piece by piece (its `_convert_elements_to_ids`) or text for previews.
 */
import { type Conversation, isPromptSide, type Turn } from '../../formats/types.js';
import type { TokenPair } from '../../tokenize/supervised.js';
import type { TokenizerLike } from '../../tokenize/tokenizer-like.js';
import { pythonJsonDumps } from '../python-json.js';
import {
  type ChatTemplate,
  type RenderedConversation,
  type RenderOptions,
  SegmentWriter,
  TemplateError,
  type TemplateTokens,
} from '../types.js';
import { applySlots, EOS, type ResolvedDefinition, type Slot, type ToolFormatName } from './slots.js';
import { type FunctionCall, toolFormat } from './tool-formats.js';

/** Options of a LLaMA-Factory template (its `DataArguments` that change templates). */
export interface LlamaFactoryTemplateOptions extends TemplateTokens {
  /** `enable_thinking` (reasoning templates): false removes thoughts and puts an empty one in the prompt. Default true. */
  enableThinking?: boolean;
  /** `default_system`: replaces the template's default system prompt. */
  defaultSystem?: string;
  /** `tool_format`: replaces the template's tool list and tool-call formats. */
  toolFormat?: ToolFormatName;
  /** Date the `llama3` tool format prints. Default: today, as LLaMA-Factory. */
  date?: Date;
}

/**
 * How a conversation is split into prompt/response pairs: `multiturn` one pair per response (SFT,
 * LLaMA-Factory's `encode_multiturn`); `oneturn` one pair, the last response after everything before it
 * (preference and KTO data, `encode_oneturn`); `generation` the prompt for the model to answer (a
 * conversation that ends on the prompt side, with an empty answer appended as LLaMA-Factory's chat does).
 */
export type EncodeMode = 'multiturn' | 'oneturn' | 'generation';

/** Options of `LlamaFactoryTemplate.encode`. */
export interface TemplateEncodeOptions {
  mode?: EncodeMode;
  /** `mask_history`: with reasoning templates, thoughts of earlier answers are dropped. */
  maskHistory?: boolean;
}

/** A conversation as token ids. */
export interface EncodedTurns {
  pairs: TokenPair[];
  warnings: string[];
  /** With `efficient_eos` templates: the EOS id that ends the whole sequence (and marks later turns). */
  efficientEosId?: number;
}

type Role = 'user' | 'assistant' | 'observation' | 'function';
interface Message {
  role: Role;
  content: string;
  turn?: Turn;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A template from LLaMA-Factory's table, or parsed from a model's chat_template. */
export class LlamaFactoryTemplate implements ChatTemplate {
  readonly name: string;
  readonly definition: ResolvedDefinition;
  private readonly options: LlamaFactoryTemplateOptions;

  constructor(name: string, definition: ResolvedDefinition, options: LlamaFactoryTemplateOptions = {}) {
    this.name = name;
    this.options = options;
    const format = options.toolFormat;
    this.definition =
      format === undefined
        ? definition
        : {
            ...definition,
            function: definition.efficientEos ? ['{{content}}'] : ['{{content}}', EOS],
            functionFormat: format,
            toolFormat: format,
            toolSlots: undefined,
          };
    toolFormat(this.definition.toolFormat);
    toolFormat(this.definition.functionFormat);
  }

  /** Words that end an answer besides EOS (LLaMA-Factory's `stop_words`). */
  get stopWords(): readonly string[] {
    return this.definition.stopWords;
  }

  /** Whether thinking is on (reasoning templates). */
  get enableThinking(): boolean {
    return this.options.enableThinking !== false;
  }

  /**
   * The id `EOS` slots write: the first stop word with `replace_eos`, else the tokenizer's EOS. Throws
   * `TemplateError` when the stop word is not a token (LLaMA-Factory would add it).
   */
  eosId(tokenizer: TokenizerLike): number | undefined {
    const { replaceEos, stopWords } = this.definition;
    if (replaceEos && stopWords.length > 0) return this.requireToken(tokenizer, stopWords[0], 'stop word');
    const eos = tokenizer.eosTokenId ?? tokenizer.tokenToId('<|endoftext|>');
    return eos ?? undefined;
  }

  /** Ids that end generation: EOS and the stop words (LLaMA-Factory's `get_stop_token_ids`). */
  stopTokenIds(tokenizer: TokenizerLike): number[] {
    const ids = new Set<number>();
    // With replace_eos the first stop word is the EOS (and the tokenizer's own is not a stop id).
    const { replaceEos, stopWords } = this.definition;
    if (!(replaceEos && stopWords.length > 0)) {
      const eos = tokenizer.eosTokenId ?? tokenizer.tokenToId('<|endoftext|>');
      if (eos !== undefined && eos !== null) ids.add(eos);
    }
    // A stop word the vocabulary lacks is left out: LLaMA-Factory would add it as a new token, which
    // the model never writes.
    for (const word of this.definition.stopWords) {
      const id = tokenizer.tokenToId(word);
      if (id !== undefined) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  }

  render(conversation: Conversation, options: RenderOptions = {}): RenderedConversation {
    const mode: EncodeMode = options.addGenerationPrompt ? 'generation' : 'multiturn';
    const { messages, warnings } = this.messageSlots(conversation, mode, false);
    const writer = new SegmentWriter();
    const textOf = (slots: Slot[]) => slots.map((slot) => this.slotText(slot)).join('');
    if (mode === 'generation') {
      writer.prompt(messages.slice(0, -1).map(textOf).join(''));
      return { segments: writer.segments, warnings };
    }
    const responses = conversation.turns.flatMap((turn, index) => (isPromptSide(turn.role) ? [] : [index]));
    for (let index = 0; index < messages.length; index += 2) {
      writer.prompt(textOf(messages[index]));
      const turn = responses[index / 2];
      writer.response(textOf(messages[index + 1]), turn, conversation.turns[turn].lossWeight !== 0);
    }
    return { segments: writer.segments, warnings };
  }

  /** Token ids of a conversation, as LLaMA-Factory's processors compute them. */
  encode(
    conversation: Conversation,
    tokenizer: TokenizerLike,
    options: TemplateEncodeOptions = {},
  ): EncodedTurns {
    const mode = options.mode ?? 'multiturn';
    const { messages, warnings } = this.messageSlots(conversation, mode, options.maskHistory ?? false);
    const ids = messages.map((slots) => this.slotIds(slots, tokenizer));
    const efficientEosId = this.definition.efficientEos ? this.eosId(tokenizer) : undefined;
    if (mode === 'generation') {
      return { pairs: [{ promptIds: ids.slice(0, -1).flat(), responseIds: [], trainable: false }], warnings };
    }
    const last = conversation.turns[conversation.turns.length - 1];
    if (mode === 'oneturn') {
      const pair = {
        promptIds: ids.slice(0, -1).flat(),
        responseIds: ids[ids.length - 1],
        trainable: last.lossWeight !== 0,
      };
      return { pairs: [pair], warnings, efficientEosId };
    }
    const responses = conversation.turns.filter((turn) => !isPromptSide(turn.role));
    const pairs: TokenPair[] = [];
    for (let index = 0; index < ids.length; index += 2) {
      pairs.push({
        promptIds: ids[index],
        responseIds: ids[index + 1],
        trainable: responses[index / 2].lossWeight !== 0,
      });
    }
    return { pairs, warnings, efficientEosId };
  }

  private requireToken(tokenizer: TokenizerLike, word: string, what: string): number {
    const id = tokenizer.tokenToId(word);
    if (id === undefined) {
      throw new TemplateError(
        `the ${this.name} template's ${what} "${word}" is not a token of this tokenizer; LLaMA-Factory would add it as a new token (resize_vocab), which webtune does not do: pick the template of the model's family`,
      );
    }
    return id;
  }

  private slotIds(slots: readonly Slot[], tokenizer: TokenizerLike): number[] {
    const ids: number[] = [];
    for (const slot of slots) {
      if (typeof slot === 'string') {
        if (slot.length > 0) ids.push(...tokenizer.encode(slot, { addSpecialTokens: false }));
      } else if ('token' in slot) {
        ids.push(this.requireToken(tokenizer, slot.token, 'token'));
      } else if (slot.special === 'bos') {
        if (tokenizer.bosTokenId !== undefined && tokenizer.bosTokenId !== null)
          ids.push(tokenizer.bosTokenId);
      } else {
        const eos = this.eosId(tokenizer);
        if (eos !== undefined) ids.push(eos);
      }
    }
    return ids;
  }

  private slotText(slot: Slot): string {
    if (typeof slot === 'string') return slot;
    if ('token' in slot) return slot.token;
    if (slot.special === 'bos') return this.options.bosToken ?? '';
    const { replaceEos, stopWords } = this.definition;
    return replaceEos && stopWords.length > 0 ? stopWords[0] : (this.options.eosToken ?? '');
  }

  /** One slot list per message, thought blocks handled for the mode. */
  private messageSlots(
    conversation: Conversation,
    mode: EncodeMode,
    maskHistory: boolean,
  ): { messages: Slot[][]; warnings: string[] } {
    checkShape(conversation, mode === 'generation');
    const messages: Message[] = conversation.turns.map((turn) => ({
      role: turn.role === 'function_call' ? 'function' : turn.role,
      content: turn.content,
      turn,
    }));
    if (mode === 'generation') messages.push({ role: 'assistant', content: '' });
    const reasoning = this.definition.kind === 'reasoning';
    const thinking = this.enableThinking;
    const emptyThought = this.definition.thoughtWords.join('');
    const hasThought = (content: string) =>
      content.includes(this.definition.thoughtWords[0].trim()) ||
      content.includes(this.definition.thoughtWords[1].trim());
    const withoutThought = (index: number) => {
      messages[index] = { ...messages[index], content: this.removeThought(messages[index].content) };
    };
    if (reasoning && mode === 'multiturn') {
      if (!thinking) for (let index = 1; index < messages.length; index += 2) withoutThought(index);
      if (maskHistory) for (let index = 1; index < messages.length - 2; index += 2) withoutThought(index);
    } else if (reasoning) {
      for (let index = 1; index < messages.length - 2; index += 2) withoutThought(index);
      if (!thinking) withoutThought(messages.length - 1);
    }
    const slots = this.encodeMessages(messages, conversation);
    if (reasoning) {
      const turns =
        mode === 'multiturn' && !maskHistory
          ? messages.flatMap((_, index) => (index % 2 === 0 ? [index] : []))
          : [messages.length - 2];
      for (const index of turns) {
        if (hasThought(messages[index + 1].content)) continue;
        if (!thinking) slots[index].push(emptyThought);
        else slots[index + 1].unshift(emptyThought);
      }
    }
    return { messages: slots, warnings: [] };
  }

  /** LLaMA-Factory's `_encode` (and `Llama2Template._encode`), as slots. */
  private encodeMessages(messages: readonly Message[], conversation: Conversation): Slot[][] {
    const definition = this.definition;
    const system = conversation.system || (this.options.defaultSystem ?? definition.defaultSystem);
    const tools = conversation.tools && conversation.tools.length > 0 ? conversation.tools : undefined;
    let toolText = '';
    if (tools) {
      toolText = definition.toolSlots
        ? (applySlots(definition.toolSlots, { content: pythonJsonDumps(tools) })[0] as string)
        : toolFormat(definition.toolFormat).tools(tools, this.options.date ?? new Date());
    }
    return messages.map((message, index) => {
      const slots: Slot[] = [];
      let systemText = '';
      if (index === 0) {
        slots.push(...definition.prefix);
        if (system || tools) {
          const systemSlots = applySlots(definition.system, { content: system + toolText });
          if (definition.kind === 'llama2')
            systemText = typeof systemSlots[0] === 'string' ? systemSlots[0] : '';
          else slots.push(...systemSlots);
        }
      }
      switch (message.role) {
        case 'user':
          slots.push(
            ...(definition.kind === 'llama2'
              ? applySlots(definition.user, { content: systemText + message.content })
              : applySlots(definition.user, {
                  content: message.content,
                  idx: String(Math.floor(index / 2)),
                })),
          );
          break;
        case 'assistant':
          slots.push(...applySlots(definition.assistant, { content: message.content }));
          break;
        case 'observation':
          slots.push(...applySlots(definition.observation, { content: message.content }));
          break;
        case 'function':
          slots.push(...applySlots(definition.function, { content: this.functionTextOf(message, index) }));
          break;
      }
      return slots;
    });
  }

  /** `functionText`, its errors naming the turn. */
  private functionTextOf(message: Message, index: number): string {
    try {
      return this.functionText(message, index);
    } catch (error) {
      if (error instanceof TemplateError && error.turn === undefined) {
        throw new TemplateError(`turn ${index + 1}: ${error.message}`, index);
      }
      throw error;
    }
  }

  /** LLaMA-Factory's `FunctionFormatter.apply`: thought or text around the calls kept, calls formatted. */
  private functionText(message: Message, index: number): string {
    const format = toolFormat(this.definition.functionFormat);
    const content = message.content;
    const [callOpen, callClose] = this.definition.toolCallWords;
    const callMatch = new RegExp(`${escapeRegExp(callOpen)}(.*?)${escapeRegExp(callClose)}`, 's').exec(
      content,
    );
    if (callMatch) {
      const rest = content.split(callMatch[0]).join('');
      return rest + format.calls(parseCalls(callMatch[1], message.turn, index));
    }
    const [thoughtOpen, thoughtClose] = this.definition.thoughtWords;
    const thought = new RegExp(`${escapeRegExp(thoughtOpen)}(.*?)${escapeRegExp(thoughtClose)}`, 's').exec(
      content,
    );
    const json = thought ? content.split(thought[0]).join('') : content;
    const text = format.calls(parseCalls(json, message.turn, index));
    return thought ? thought[0] + text : text;
  }

  /** LLaMA-Factory's `remove_thought`: every thought block removed, then leading newlines. */
  private removeThought(content: string): string {
    const [open, close] = this.definition.thoughtWords;
    const pattern = new RegExp(`${escapeRegExp(open)}(.*?)${escapeRegExp(close)}`, 'gs');
    return content.replace(pattern, '').replace(/^\n+/, '');
  }
}

/** The calls of a function message: its JSON text (one call or a list), else the parsed `toolCalls`. */
function parseCalls(json: string, turn: Turn | undefined, index: number): FunctionCall[] {
  try {
    const parsed = JSON.parse(json) as unknown;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    if (list.every((item) => item && typeof item === 'object' && 'name' in item && 'arguments' in item)) {
      return list.map((item) => ({ name: String(item.name), arguments: item.arguments }));
    }
  } catch {
    // fall through to the parsed calls
  }
  if (turn?.toolCalls && turn.toolCalls.length > 0) return turn.toolCalls;
  throw new TemplateError(`turn ${index + 1}: the tool call is not JSON with "name" and "arguments"`, index);
}

/** Turns alternate prompt side / response side from a prompt-side start, and end on the side the mode needs. */
function checkShape(conversation: Conversation, generation: boolean): void {
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
  if (generation && (last === undefined || !isPromptSide(last.role))) {
    throw new TemplateError('a generation prompt needs a conversation that ends with a user-side turn');
  }
  if (!generation && (last === undefined || isPromptSide(last.role))) {
    throw new TemplateError('a training conversation must end with an assistant-side turn');
  }
}
