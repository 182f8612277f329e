/**
 * The pieces LLaMA-Factory's templates are made of, as data: a template is a set of slot lists (one
 * per message kind), and a slot is text with `{{content}}` / `{{idx}}` placeholders, the tokenizer's
 * BOS or EOS token, or a named vocabulary token. Each text slot is tokenized on its own, as
 * LLaMA-Factory does, so the ids match its `Template._convert_elements_to_ids`.
 */

/** A piece of a template: text, the BOS / EOS token, or a vocabulary token by name. */
export type Slot = string | { readonly special: 'bos' | 'eos' } | { readonly token: string };

/** The tokenizer's BOS token (LLaMA-Factory's `{"bos_token"}`); left out when it has none. */
export const BOS: Slot = { special: 'bos' };
/** The tokenizer's EOS token (LLaMA-Factory's `{"eos_token"}`), or the first stop word with `replaceEos`. */
export const EOS: Slot = { special: 'eos' };
/** A vocabulary token by its string (LLaMA-Factory's `{"token": ...}`). */
export const token = (name: string): Slot => ({ token: name });

/** Tool-call formats, with LLaMA-Factory's names (its `tool_utils.py`). */
export type ToolFormatName = 'default' | 'glm4' | 'llama3' | 'mistral' | 'qwen';

/** The kinds of template LLaMA-Factory has (its `template_class`). */
export type TemplateKind =
  /** Each message formatted on its own (`Template`). */
  | 'plain'
  /** The system text goes into the first user message (`Llama2Template`). */
  | 'llama2'
  /** Assistant messages carry a thought block (`ReasoningTemplate`). */
  | 'reasoning';

/**
 * One LLaMA-Factory template, as `register_template` takes it. Absent fields take `register_template`'s
 * defaults: user and system `{{content}}`; assistant `{{content}}` then EOS (no EOS with `efficientEos`);
 * function calls in the assistant's slots with the `default` tool format; observations in the user's.
 */
export interface TemplateDefinition {
  user?: readonly Slot[];
  assistant?: readonly Slot[];
  system?: readonly Slot[];
  /** Slots of a tool-call message (`format_function`); `{{content}}` is the formatted calls. */
  function?: readonly Slot[];
  /** Tool format of `format_function` when `function` is given. Default `default`. */
  functionFormat?: ToolFormatName;
  observation?: readonly Slot[];
  /** Tool format of `format_tools` (the tool list in the system message). Default `default`. */
  toolFormat?: ToolFormatName;
  /** `format_tools` as plain slots around the tools' JSON text (phi4_mini), instead of a tool format. */
  toolSlots?: readonly Slot[];
  prefix?: readonly Slot[];
  defaultSystem?: string;
  stopWords?: readonly string[];
  /** Default `["<think>\n", "\n</think>\n\n"]`. */
  thoughtWords?: readonly [string, string];
  /** Default `["<tool_call>", "</tool_call>"]`. */
  toolCallWords?: readonly [string, string];
  /** EOS once at the end of a conversation instead of after each answer. */
  efficientEos?: boolean;
  /** The first stop word becomes the EOS token. */
  replaceEos?: boolean;
  kind?: TemplateKind;
}

/** A definition with every default filled in. */
export interface ResolvedDefinition {
  user: readonly Slot[];
  assistant: readonly Slot[];
  system: readonly Slot[];
  function: readonly Slot[];
  functionFormat: ToolFormatName;
  observation: readonly Slot[];
  toolFormat: ToolFormatName;
  toolSlots?: readonly Slot[];
  prefix: readonly Slot[];
  defaultSystem: string;
  stopWords: readonly string[];
  thoughtWords: readonly [string, string];
  toolCallWords: readonly [string, string];
  efficientEos: boolean;
  replaceEos: boolean;
  kind: TemplateKind;
}

/** Fills in `register_template`'s defaults. */
export function resolveDefinition(definition: TemplateDefinition): ResolvedDefinition {
  const efficientEos = definition.efficientEos ?? false;
  const contentOnly: Slot[] = ['{{content}}'];
  const assistantDefault: Slot[] = efficientEos ? contentOnly : ['{{content}}', EOS];
  const user = definition.user ?? contentOnly;
  return {
    user,
    assistant: definition.assistant ?? assistantDefault,
    system: definition.system ?? contentOnly,
    function: definition.function ?? definition.assistant ?? assistantDefault,
    functionFormat: definition.function ? (definition.functionFormat ?? 'default') : 'default',
    observation: definition.observation ?? user,
    toolFormat: definition.toolFormat ?? 'default',
    toolSlots: definition.toolSlots,
    prefix: definition.prefix ?? [],
    defaultSystem: definition.defaultSystem ?? '',
    stopWords: definition.stopWords ?? [],
    thoughtWords: definition.thoughtWords ?? ['<think>\n', '\n</think>\n\n'],
    toolCallWords: definition.toolCallWords ?? ['<tool_call>', '</tool_call>'],
    efficientEos,
    replaceEos: definition.replaceEos ?? false,
    kind: definition.kind ?? 'plain',
  };
}

/**
 * Fills placeholders: in each text slot, the first `{{name}}` of each value is replaced (as
 * LLaMA-Factory's `StringFormatter.apply`); special slots pass through.
 */
export function applySlots(slots: readonly Slot[], values: Record<string, string> = {}): Slot[] {
  return slots.map((slot) => {
    if (typeof slot !== 'string') return slot;
    let text = slot;
    for (const [name, value] of Object.entries(values)) {
      const placeholder = `{{${name}}}`;
      const at = text.indexOf(placeholder);
      if (at >= 0) text = text.slice(0, at) + value + text.slice(at + placeholder.length);
    }
    return text;
  });
}
