/** Choosing the chat template for a tokenizer: a built-in by name, Jinja text, or the model's own. */
import type { TokenizerLike } from '../tokenize/tokenizer-like.js';
import { templateTokensOf } from '../tokenize/tokenizer-like.js';
import { BUILTIN_TEMPLATE_NAMES, builtinTemplate } from './builtin/index.js';
import { JinjaChatTemplate } from './jinja-template.js';
import { type ChatTemplate, TemplateError } from './types.js';

/** Options of `resolveChatTemplate`. */
export interface ResolveTemplateOptions {
  /** Qwen3-style thinking switch, passed to the template (see `JinjaTemplateOptions.enableThinking`). */
  enableThinking?: boolean;
  /** Date for templates that print today's date. Default 26 Jul 2024. */
  date?: Date;
}

/**
 * The template to use: a `ChatTemplate` as given; a built-in name (`qwen3`, `llama3`...); Jinja source
 * text; or, for `undefined` / `'auto'`, the tokenizer's own `chat_template`. Special-token strings come
 * from the tokenizer. Throws `TemplateError` when none applies.
 */
export function resolveChatTemplate(
  template: string | ChatTemplate | undefined,
  tokenizer: TokenizerLike | undefined,
  options: ResolveTemplateOptions = {},
): ChatTemplate {
  if (template !== undefined && typeof template !== 'string') return template;
  const tokens = tokenizer ? templateTokensOf(tokenizer) : {};
  const defined = Object.fromEntries(Object.entries(tokens).filter(([, value]) => value !== undefined));
  if (template !== undefined && template !== 'auto') {
    if ((BUILTIN_TEMPLATE_NAMES as string[]).includes(template)) {
      return builtinTemplate(template, {
        ...defined,
        enableThinking: options.enableThinking,
        date: options.date,
      });
    }
    if (template.includes('{%') || template.includes('{{')) {
      return new JinjaChatTemplate(template, {
        ...defined,
        enableThinking: options.enableThinking,
        date: options.date,
      });
    }
    throw new TemplateError(
      `unknown template "${template}"; built-in templates: ${BUILTIN_TEMPLATE_NAMES.join(', ')}`,
    );
  }
  const source = tokenizer?.chatTemplate;
  if (typeof source !== 'string' || source.length === 0) {
    throw new TemplateError(
      `the tokenizer has no chat_template; name a built-in template (${BUILTIN_TEMPLATE_NAMES.join(', ')})`,
    );
  }
  return new JinjaChatTemplate(source, {
    ...defined,
    name: 'chat_template',
    enableThinking: options.enableThinking,
    date: options.date,
  });
}
