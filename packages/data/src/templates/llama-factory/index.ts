/** LLaMA-Factory's templates by name: the tables, aliases, and building a template. */
import { TemplateError } from '../types.js';
import { FAMILY_TEMPLATES, TEMPLATE_ALIASES } from './definitions-families.js';
import { GENERIC_TEMPLATES } from './definitions-generic.js';
import { LlamaFactoryTemplate, type LlamaFactoryTemplateOptions } from './llama-factory-template.js';
import { resolveDefinition, type TemplateDefinition } from './slots.js';

const DEFINITIONS: Record<string, TemplateDefinition> = { ...GENERIC_TEMPLATES, ...FAMILY_TEMPLATES };

/** The template names webtune has, with LLaMA-Factory's spelling. */
export const TEMPLATE_NAMES: readonly string[] = Object.keys(DEFINITIONS).sort();

/** The name a template name stands for (`deepseek_r1` -> `deepseekr1`), or undefined for an unknown name. */
export function canonicalTemplateName(name: string): string | undefined {
  const canonical = TEMPLATE_ALIASES[name] ?? name;
  return Object.hasOwn(DEFINITIONS, canonical) ? canonical : undefined;
}

/** The LLaMA-Factory template of a name. Throws `TemplateError` for an unknown name. */
export function llamaFactoryTemplate(
  name: string,
  options: LlamaFactoryTemplateOptions = {},
): LlamaFactoryTemplate {
  const canonical = canonicalTemplateName(name);
  if (canonical === undefined) {
    throw new TemplateError(`unknown template "${name}"; templates: ${TEMPLATE_NAMES.join(', ')}`);
  }
  return new LlamaFactoryTemplate(canonical, resolveDefinition(DEFINITIONS[canonical]), options);
}
