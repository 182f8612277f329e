/**
 * What LLaMA-Factory does when no template is named and the tokenizer has a `chat_template` (its
 * `parse_template`): render the Jinja template with placeholder messages and read the system, user and
 * assistant slots off the text, so the model's own format is encoded piece by piece like a table template.
 */
import type { TokenizerLike } from '../../tokenize/tokenizer-like.js';
import type { JinjaChatTemplate } from '../jinja-template.js';
import { stripCharacters } from '../python-json.js';
import { TemplateError } from '../types.js';
import { type ResolvedDefinition, resolveDefinition } from './slots.js';

const CONTENT = '{{content}}';

/** Characters of `long` that are not matched in order against `short` (LLaMA-Factory's `find_diff`). */
function findDifference(short: string, long: string): string {
  let i = 0;
  let j = 0;
  let difference = '';
  while (i < short.length && j < long.length) {
    if (short[i] === long[j]) {
      i++;
      j++;
    } else {
      difference += long[j];
      j++;
    }
  }
  return difference;
}

/** The template read off a model's Jinja chat template. */
export function parseChatTemplate(jinja: JinjaChatTemplate, tokenizer: TokenizerLike): ResolvedDefinition {
  const prefix = tokenizer.decode(tokenizer.encode('', { addSpecialTokens: true }), {
    skipSpecialTokens: false,
  });
  const render = (
    messages: { role: 'system' | 'user' | 'assistant'; content: string }[],
    generation: boolean,
  ) => jinja.renderMessages(messages, undefined, generation).slice(prefix.length);

  const systemSlot = render([{ role: 'system', content: CONTENT }], false);
  const userSlotEmptySystem = render(
    [
      { role: 'system', content: '' },
      { role: 'user', content: CONTENT },
    ],
    true,
  );
  let userSlot = render([{ role: 'user', content: CONTENT }], true);
  let assistantSlot = render(
    [
      { role: 'user', content: CONTENT },
      { role: 'assistant', content: CONTENT },
    ],
    false,
  ).slice(userSlot.length);
  const reasoning = assistantSlot.includes('<think>');
  assistantSlot = stripCharacters(
    assistantSlot.split('<think>').join('').split('</think>').join(''),
    '\n',
    'left',
  );

  let defaultSystem = '';
  if (userSlot.length > userSlotEmptySystem.length) {
    defaultSystem = findDifference(userSlotEmptySystem, userSlot);
    const soleSystem = systemSlot.replace(CONTENT, () => defaultSystem);
    userSlot = userSlot.slice(soleSystem.length);
  }
  for (const [name, slot] of [
    ['user', userSlot],
    ['assistant', assistantSlot],
    ['system', systemSlot],
  ]) {
    if (!slot.includes(CONTENT)) {
      throw new TemplateError(
        `the tokenizer's chat_template cannot be read as a LLaMA-Factory template (no content in its ${name} part); name a template`,
      );
    }
  }
  return resolveDefinition({
    user: [userSlot],
    assistant: [assistantSlot],
    system: [systemSlot],
    function: [assistantSlot],
    observation: [userSlot],
    prefix: prefix ? [prefix] : [],
    defaultSystem,
    kind: reasoning ? 'reasoning' : 'plain',
  });
}
