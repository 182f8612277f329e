/**
 * A model's own Jinja `chat_template` (from tokenizer_config.json), rendered with @huggingface/jinja in the
 * environment Transformers gives templates. For training, the rendered text is split into prompt and
 * response segments by rendering conversation prefixes and comparing them with the full rendering:
 *
 * - a response starts where the prefix rendered with `add_generation_prompt` stops matching the full
 *   text, or where the turn's content begins (found by rendering a sentinel in place of the content), or
 *   where the turn departs from a plain assistant message in its place (tool calls); the earliest of these
 *   that is consistent with the full text is taken, so a generation prompt's empty think block is
 *   trained when the conversation has it;
 * - a response ends after the template's end-of-turn text, found with the same sentinel rendering.
 *
 * Every turn must show up in the rendering: a template that silently drops a tool turn rejects the row.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import type { Conversation } from '../formats/types.js';
import { type ChatMessage, toChatMessages, withoutReasoning } from './messages.js';
import {
  type ChatTemplate,
  type RenderedConversation,
  type RenderOptions,
  SegmentWriter,
  TemplateError,
  type TemplateTokens,
} from './types.js';

/** Options of a Jinja chat template. */
export interface JinjaTemplateOptions extends TemplateTokens {
  /** Name shown in reports. Default `jinja`. */
  name?: string;
  /**
   * Passed to the template as `enable_thinking` (Qwen3). `false` also removes reasoning blocks from
   * assistant turns before rendering, as LLaMA-Factory does. Undefined leaves the template's default.
   */
  enableThinking?: boolean;
  /** Date that `strftime_now` reports, for templates that print today's date. Default 26 Jul 2024. */
  date?: Date;
  /** More variables for the template. */
  context?: Record<string, unknown>;
}

const SENTINEL = '\ue000webtune-turn-content\ue001';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTHS_LONG = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** A chat template from Jinja source. */
export class JinjaChatTemplate implements ChatTemplate {
  readonly name: string;
  readonly source: string;
  private readonly program: Template;
  private readonly options: JinjaTemplateOptions;

  constructor(source: string, options: JinjaTemplateOptions = {}) {
    this.name = options.name ?? 'jinja';
    this.source = source;
    this.options = options;
    try {
      this.program = new Template(source);
    } catch (error) {
      throw new TemplateError(`the chat template does not parse: ${(error as Error).message}`);
    }
  }

  /** Renders chat messages as the template does (Transformers' `apply_chat_template(tokenize=False)`). */
  renderMessages(messages: readonly ChatMessage[], tools: unknown, addGenerationPrompt: boolean): string {
    const environment = new Environment();
    const variables: Record<string, unknown> = {
      ...this.globals(),
      bos_token: this.options.bosToken ?? '',
      eos_token: this.options.eosToken ?? '',
      ...(this.options.padToken !== undefined ? { pad_token: this.options.padToken } : {}),
      ...(this.options.unkToken !== undefined ? { unk_token: this.options.unkToken } : {}),
      ...(this.options.enableThinking !== undefined ? { enable_thinking: this.options.enableThinking } : {}),
      ...this.options.context,
      messages,
      add_generation_prompt: addGenerationPrompt,
    };
    if (tools !== undefined) variables.tools = tools;
    for (const [key, value] of Object.entries(variables)) environment.set(key, value);
    try {
      return new Interpreter(environment).run(this.program.parsed).value as string;
    } catch (error) {
      throw new TemplateError(`the chat template raised: ${(error as Error).message}`);
    }
  }

  render(conversation: Conversation, options: RenderOptions = {}): RenderedConversation {
    const prepared = this.options.enableThinking === false ? withoutReasoning(conversation) : conversation;
    const { messages, messageOfTurn, tools } = toChatMessages(prepared);
    if (options.addGenerationPrompt) {
      const text = this.renderMessages(messages, tools, true);
      const writer = new SegmentWriter();
      writer.prompt(text);
      return {
        segments: writer.segments,
        warnings: this.droppedTurns(text, prepared, messages, messageOfTurn),
      };
    }
    const full = this.renderMessages(messages, tools, false);
    const warnings = this.droppedTurns(full, prepared, messages, messageOfTurn);
    const writer = new SegmentWriter();
    let cursor = 0;
    prepared.turns.forEach((turn, turnIndex) => {
      if (turn.role !== 'assistant' && turn.role !== 'function_call') return;
      const { start, end } = this.responseBounds(
        full,
        messages,
        messageOfTurn[turnIndex],
        cursor,
        turnIndex,
        tools,
      );
      const response = full.slice(start, end);
      const visible =
        turn.role === 'function_call'
          ? (turn.toolCalls?.[0]?.name ?? '')
          : visibleAnswer(turn.content).trim();
      if (visible.length > 0 && !containsText(response, visible)) {
        throw new TemplateError(
          `cannot find assistant turn ${turnIndex + 1} in the chat template's output (the template drops or rewrites it)`,
          turnIndex,
        );
      }
      writer.prompt(full.slice(cursor, start));
      writer.response(response, turnIndex, turn.lossWeight !== 0);
      cursor = end;
    });
    writer.prompt(full.slice(cursor));
    return { segments: writer.segments, warnings };
  }

  /** Where the response of the assistant message at `index` lies in `full`. */
  private responseBounds(
    full: string,
    messages: ChatMessage[],
    index: number,
    cursor: number,
    turn: number,
    tools: unknown,
  ): { start: number; end: number } {
    const before = messages.slice(0, index);
    const starts: number[] = [];
    const ends: number[] = [];

    // Start 1: where the generation prompt for this turn stops matching.
    const prompt = this.renderMessages(before, tools, true);
    const matched = commonPrefixLength(full, prompt);
    if (matched === prompt.length) starts.push(matched);
    else {
      const withoutPrompt = this.renderMessages(before, tools, false);
      const generationTail = prompt.startsWith(withoutPrompt) ? prompt.slice(withoutPrompt.length) : '';
      const unmatched = prompt.slice(matched);
      if (generationTail.endsWith(unmatched)) starts.push(backToBoundary(full, matched, cursor));
    }

    // Start 2 and end: render with a sentinel in place of the turn's content.
    const marked = messages.map((message, position) =>
      position === index ? { ...message, content: SENTINEL } : message,
    );
    const markedFull = this.renderMessages(marked, tools, false);
    const at = markedFull.indexOf(SENTINEL);
    if (at >= 0 && at === markedFull.lastIndexOf(SENTINEL)) {
      const head = markedFull.slice(0, at);
      const tail = markedFull.slice(at + SENTINEL.length);
      if (full.startsWith(head)) starts.push(head.length);
      if (full.endsWith(tail)) {
        const alone = this.renderMessages(marked.slice(0, index + 1), tools, false);
        const endOfTurn = alone.slice(alone.indexOf(SENTINEL) + SENTINEL.length);
        let shared = commonPrefixLength(endOfTurn, tail);
        if (shared < endOfTurn.length && shared < tail.length) shared = backToBoundary(endOfTurn, shared, 0);
        ends.push(full.length - tail.length + shared);
      }
    }

    // Start 3: where the turn's own rendering departs from a plain assistant message in its place
    // (for tool calls, whose content a template may not print).
    const upToTurn = this.renderMessages(messages.slice(0, index + 1), tools, false);
    const plain = this.renderMessages([...before, { role: 'assistant', content: SENTINEL }], tools, false);
    let departs = commonPrefixLength(upToTurn, plain);
    if (departs < upToTurn.length && departs < plain.length)
      departs = backToBoundary(upToTurn, departs, cursor);
    if (full.startsWith(upToTurn.slice(0, departs))) starts.push(departs);

    const start = Math.min(...starts.filter((position) => position >= cursor));
    if (!Number.isFinite(start)) {
      throw new TemplateError(
        `cannot find where assistant turn ${turn + 1} starts in the chat template's output`,
        turn,
      );
    }
    if (ends.length === 0 || ends[0] <= start) {
      // End 1: how far the rendering of the conversation up to this turn matches the full text.
      let shared = commonPrefixLength(full, upToTurn);
      if (shared < upToTurn.length && shared < full.length) shared = backToBoundary(full, shared, start);
      ends.length = 0;
      ends.push(shared);
    }
    const end = ends[0];
    if (end <= start) {
      throw new TemplateError(
        `cannot find where assistant turn ${turn + 1} ends in the chat template's output`,
        turn,
      );
    }
    return { start, end };
  }

  /**
   * Remarks about turns the rendering leaves out. A dropped system prompt is a warning; a dropped user or
   * tool turn rejects the conversation.
   */
  private droppedTurns(
    text: string,
    conversation: Conversation,
    messages: ChatMessage[],
    messageOfTurn: number[],
  ): string[] {
    const warnings: string[] = [];
    if (messages[0]?.role === 'system' && !containsText(text, messages[0].content.trim())) {
      warnings.push(`the chat template ${this.name} leaves out the system prompt of this conversation`);
    }
    conversation.turns.forEach((turn, index) => {
      if (turn.role !== 'user' && turn.role !== 'observation') return;
      const content = messages[messageOfTurn[index]].content.trim();
      if (content.length > 0 && !containsText(text, content)) {
        throw new TemplateError(
          `the chat template ${this.name} leaves out ${turn.role} turn ${index + 1}`,
          index,
        );
      }
    });
    return warnings;
  }

  private globals(): Record<string, unknown> {
    const date = this.options.date ?? new Date(Date.UTC(2024, 6, 26));
    return {
      true: true,
      false: false,
      none: null,
      True: true,
      False: false,
      None: null,
      raise_exception: (message: unknown) => {
        throw new Error(String(message));
      },
      range: (first: number, second?: number, step = 1) => {
        const start = second === undefined ? 0 : first;
        const stop = second === undefined ? first : second;
        const values: number[] = [];
        for (let value = start; step > 0 ? value < stop : value > stop; value += step) values.push(value);
        return values;
      },
      strftime_now: (format: string) => formatDate(date, format),
    };
  }
}

/** `strftime` for the directives chat templates use, in English and UTC. */
export function formatDate(date: Date, format: string): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  return format.replace(/%[YmdbBHMSyAa%-]d?/g, (directive) => {
    switch (directive) {
      case '%Y':
        return String(date.getUTCFullYear());
      case '%y':
        return pad(date.getUTCFullYear() % 100);
      case '%m':
        return pad(date.getUTCMonth() + 1);
      case '%d':
        return pad(date.getUTCDate());
      case '%-d':
        return String(date.getUTCDate());
      case '%b':
        return MONTHS[date.getUTCMonth()];
      case '%B':
        return MONTHS_LONG[date.getUTCMonth()];
      case '%H':
        return pad(date.getUTCHours());
      case '%M':
        return pad(date.getUTCMinutes());
      case '%S':
        return pad(date.getUTCSeconds());
      case '%%':
        return '%';
      default:
        return directive;
    }
  });
}

/** Length of the longest common prefix of two strings. */
export function commonPrefixLength(left: string, right: string): number {
  const limit = Math.min(left.length, right.length);
  let index = 0;
  while (index < limit && left.charCodeAt(index) === right.charCodeAt(index)) index++;
  return index;
}

/**
 * Moves a split point back to just after whitespace or a closing `>`, `]`, `:` or `}`, so that two texts
 * that diverge inside a tag (`<|end|>` vs `<|endoftext|>`) are not split inside it.
 */
function backToBoundary(text: string, position: number, floor: number): number {
  let index = position;
  while (index > floor && !/[\s>\]:}]/.test(text[index - 1])) index--;
  return index;
}

/** The answer part of assistant text (after the last `</think>`). */
function visibleAnswer(content: string): string {
  const end = content.lastIndexOf('</think>');
  return end < 0 ? content : content.slice(end + '</think>'.length);
}

/** Whether `text` holds `needle` as it is or JSON-escaped (templates that `tojson` a turn's text). */
function containsText(text: string, needle: string): boolean {
  if (text.includes(needle)) return true;
  const escaped = JSON.stringify(needle).slice(1, -1);
  return text.includes(escaped);
}
