/**
 * Choosing the chat template, as LLaMA-Factory does: a template by its LLaMA-Factory name; with no name,
 * the tokenizer's `chat_template` read as a template (`parse_template`), or `empty` for a tokenizer without
 * one. Beyond LLaMA-Factory: `auto` renders the tokenizer's own Jinja template exactly (Transformers'
 * `apply_chat_template`), and Jinja source text can be given directly.
 */
import type { TokenizerLike } from '../tokenize/tokenizer-like.js';
import { templateTokensOf } from '../tokenize/tokenizer-like.js';
import { JinjaChatTemplate } from './jinja-template.js';
import { canonicalTemplateName, llamaFactoryTemplate, TEMPLATE_NAMES } from './llama-factory/index.js';
import { LlamaFactoryTemplate } from './llama-factory/llama-factory-template.js';
import { parseChatTemplate } from './llama-factory/parse-template.js';
import type { ToolFormatName } from './llama-factory/slots.js';
import { TOOL_FORMAT_NAMES } from './llama-factory/tool-formats.js';
import { type ChatTemplate, TemplateError } from './types.js';

/** Options of `resolveChatTemplate`: LLaMA-Factory's data arguments that change templates. */
export interface ResolveTemplateOptions {
  /** `enable_thinking` (reasoning templates and Qwen3-style Jinja templates). Default true. */
  enableThinking?: boolean;
  /** `default_system`: replaces the template's default system prompt. */
  defaultSystem?: string;
  /** `tool_format`: `default`, `glm4`, `llama3`, `mistral` or `qwen`. */
  toolFormat?: string;
  /** Date for templates that print today's date. Default: today for LLaMA-Factory templates, 26 Jul 2024 for Jinja. */
  date?: Date;
}

/** The name a template without a name gets in reports. */
export const PARSED_TEMPLATE_NAME = 'chat_template (parsed)';

/**
 * The template to use: a `ChatTemplate` as given; a LLaMA-Factory template name (`qwen3`, `llama3`,
 * `default`...); `auto` for the tokenizer's own Jinja template; Jinja source text; or, for `undefined`,
 * LLaMA-Factory's choice (the tokenizer's chat_template parsed, else `empty`). Special-token strings come
 * from the tokenizer. Throws `TemplateError` when none applies.
 */
export function resolveChatTemplate(
  template: string | ChatTemplate | undefined,
  tokenizer: TokenizerLike | undefined,
  options: ResolveTemplateOptions = {},
): ChatTemplate {
  if (template !== undefined && typeof template !== 'string') return template;
  if (options.toolFormat !== undefined && !(TOOL_FORMAT_NAMES as string[]).includes(options.toolFormat)) {
    throw new TemplateError(
      `unknown tool_format "${options.toolFormat}"; tool formats: ${TOOL_FORMAT_NAMES.join(', ')}`,
    );
  }
  const tokens = Object.fromEntries(
    Object.entries(tokenizer ? templateTokensOf(tokenizer) : {}).filter(([, value]) => value !== undefined),
  );
  const templateOptions = {
    ...tokens,
    enableThinking: options.enableThinking,
    defaultSystem: options.defaultSystem,
    toolFormat: options.toolFormat as ToolFormatName | undefined,
    date: options.date,
  };
  const jinja = (source: string, name: string) =>
    new JinjaChatTemplate(source, {
      ...tokens,
      name,
      enableThinking: options.enableThinking,
      date: options.date,
    });

  if (template === undefined) {
    const source = tokenizer?.chatTemplate;
    if (typeof source !== 'string' || source.length === 0 || tokenizer === undefined) {
      return llamaFactoryTemplate('empty', templateOptions);
    }
    const definition = parseChatTemplate(jinja(source, 'chat_template'), tokenizer);
    return new LlamaFactoryTemplate(PARSED_TEMPLATE_NAME, definition, templateOptions);
  }
  if (canonicalTemplateName(template) !== undefined) return llamaFactoryTemplate(template, templateOptions);
  if (template === 'auto') {
    const source = tokenizer?.chatTemplate;
    if (typeof source !== 'string' || source.length === 0) {
      throw new TemplateError(
        `the tokenizer has no chat_template for "auto"; name a template (${TEMPLATE_NAMES.join(', ')})`,
      );
    }
    return jinja(source, 'chat_template');
  }
  if (template.includes('{%') || template.includes('{{')) return jinja(template, 'jinja');
  throw new TemplateError(`unknown template "${template}"; templates: ${TEMPLATE_NAMES.join(', ')}`);
}
