/** The named built-in templates, for models whose tokenizer has no `chat_template`. */
import { TemplateError } from '../types.js';
import { BuiltinChatTemplate, type BuiltinTemplateOptions, type Renderer } from './builtin-template.js';
import { renderLlama2, renderLlama3 } from './llama.js';
import { renderMistral } from './mistral.js';
import { renderDeepSeekR1, renderGemma, renderPhi } from './others.js';
import { renderQwen, renderQwen3 } from './qwen.js';
import { renderAlpaca, renderChatMl, renderDefault, renderEmpty, renderVicuna } from './simple.js';

const RENDERERS = {
  default: renderDefault,
  empty: renderEmpty,
  alpaca: renderAlpaca,
  vicuna: renderVicuna,
  chatml: renderChatMl,
  llama2: renderLlama2,
  llama3: renderLlama3,
  mistral: renderMistral,
  qwen: renderQwen,
  qwen3: renderQwen3,
  qwen3_nothink: renderQwen3,
  gemma: renderGemma,
  phi: renderPhi,
  deepseek_r1: renderDeepSeekR1,
} satisfies Record<string, Renderer>;

/** Names of the built-in templates. `qwen3_nothink` is `qwen3` with thinking off. */
export type BuiltinTemplateName = keyof typeof RENDERERS;

/** All built-in template names. */
export const BUILTIN_TEMPLATE_NAMES = Object.keys(RENDERERS) as BuiltinTemplateName[];

/**
 * The built-in template of a name. Special-token strings default to the family's own (`<|begin_of_text|>`,
 * `<bos>`, `<s>`...); pass the tokenizer's to override them. The generic formats need `eosToken`.
 */
export function builtinTemplate(name: string, options: BuiltinTemplateOptions = {}): BuiltinChatTemplate {
  const renderer = (RENDERERS as Record<string, Renderer>)[name];
  if (renderer === undefined) {
    throw new TemplateError(
      `unknown template "${name}"; built-in templates: ${BUILTIN_TEMPLATE_NAMES.join(', ')}`,
    );
  }
  const resolved = name === 'qwen3_nothink' ? { ...options, enableThinking: false } : options;
  return new BuiltinChatTemplate(name, renderer, resolved);
}

export type { BuiltinTemplateOptions };
