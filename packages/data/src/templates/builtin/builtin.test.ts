import { requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import type { Conversation } from '../../formats/types.js';
import {
  conversationOf,
  FAMILY,
  goldenCases,
  goldens,
  templateSource,
} from '../../test-support/chat-template-goldens.js';
import { JinjaChatTemplate } from '../jinja-template.js';
import { renderText, TemplateError } from '../types.js';
import { BUILTIN_TEMPLATE_NAMES, builtinTemplate } from './index.js';

/** Cases where the built-in template deliberately differs from the official one, and why. */
function expectedDifference(file: string, caseName: string): string | undefined {
  const family = FAMILY[file];
  const tools = caseName.startsWith('tool-');
  if ((family === 'phi' || family === 'deepseek_r1' || family === 'gemma') && tools) {
    return 'the official template has no tool format and silently drops tool turns; the built-in refuses them';
  }
  if (family === 'gemma' && caseName.startsWith('system-'))
    return 'the official template refuses a system prompt';
  return undefined;
}

describe.skipIf(!requireFixtures('chat_templates/Qwen-Qwen3-0.6B.jinja'))(
  'built-in templates against the official ones',
  () => {
    it('render the same text as the official template for every conversation it renders', () => {
      let compared = 0;
      for (const result of goldens.results) {
        const item = goldenCases.get(result.case)!;
        const tokens = goldens.specialTokens[result.template];
        const builtin = builtinTemplate(FAMILY[result.template], {
          bosToken: tokens.bos_token || undefined,
          eosToken: tokens.eos_token,
          enableThinking: item.extra?.enable_thinking,
        });
        const render = () =>
          renderText(builtin, conversationOf(item), { addGenerationPrompt: item.add_generation_prompt });
        const label = `${result.template} / ${result.case}`;
        const difference = expectedDifference(result.template, result.case);
        if (difference !== undefined) {
          if (result.case.startsWith('tool-')) expect(render, label).toThrow(TemplateError);
          continue;
        }
        expect(result.output, label).toBeDefined();
        expect(render(), label).toBe(result.output);
        compared++;
      }
      expect(compared).toBe(69);
    });

    it('split training conversations into the same prompt and response segments as the official template', () => {
      let compared = 0;
      for (const result of goldens.results) {
        const item = goldenCases.get(result.case)!;
        if (item.add_generation_prompt || result.output === undefined) continue;
        if (expectedDifference(result.template, result.case) !== undefined) continue;
        const tokens = goldens.specialTokens[result.template];
        const conversation = conversationOf(item);
        const official = new JinjaChatTemplate(templateSource(result.template), {
          bosToken: tokens.bos_token,
          eosToken: tokens.eos_token,
        });
        const builtin = builtinTemplate(FAMILY[result.template], {
          bosToken: tokens.bos_token || undefined,
          eosToken: tokens.eos_token,
        });
        const label = `${result.template} / ${result.case}`;
        const officialRender = official.render(conversation);
        const builtinRender = builtin.render(conversation);
        expect(builtinRender.segments, label).toEqual(officialRender.segments);
        // Both say when the system prompt is left out (Mistral-Nemo's template does that).
        expect(builtinRender.warnings.length > 0, label).toBe(officialRender.warnings.length > 0);
        compared++;
      }
      expect(compared).toBe(41);
    });

    it('qwen3 with thinking off (qwen3_nothink) keeps the empty think block out of the trained text', () => {
      const conversation = conversationOf(goldenCases.get('reasoning')!);
      const segments = builtinTemplate('qwen3_nothink').render(conversation).segments;
      expect(
        segments.filter((segment) => segment.kind === 'response').map((segment) => segment.text),
      ).toEqual(['It is 4.<|im_end|>\n', 'It is 6.<|im_end|>\n']);
      expect(segments.map((segment) => segment.text).join('')).toBe(
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nIt is 4.<|im_end|>\n' +
          '<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 6.<|im_end|>\n',
      );
    });
  },
);

describe('generic built-in templates', () => {
  const conversation: Conversation = {
    system: 'Be kind.',
    turns: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
      { role: 'user', content: 'Bye' },
      { role: 'assistant', content: 'See you' },
    ],
  };
  const prompt: Conversation = { turns: [{ role: 'user', content: 'Hi' }] };
  const render = (name: string, value: Conversation, addGenerationPrompt = false) =>
    builtinTemplate(name, { bosToken: '<s>', eosToken: '</s>' })
      .render(value, { addGenerationPrompt })
      .segments.map((segment) => (segment.kind === 'response' ? `[${segment.text}]` : segment.text))
      .join('');

  it('write each format with the answers (and their end marks) as the trained parts', () => {
    expect(render('default', conversation)).toBe(
      'System: Be kind.\nHuman: Hi\nAssistant: [Hello</s>]\nHuman: Bye\nAssistant: [See you</s>]',
    );
    expect(render('empty', conversation)).toBe('Be kind.\nHi[Hello</s>]Bye[See you</s>]');
    expect(render('alpaca', conversation)).toBe(
      'Be kind.\n\n### Instruction:\nHi\n\n### Response:\n[Hello</s>]\n\n### Instruction:\nBye\n\n### Response:\n[See you</s>]',
    );
    expect(render('vicuna', conversation)).toBe(
      'Be kind. USER: Hi ASSISTANT:[ Hello</s>]USER: Bye ASSISTANT:[ See you</s>]',
    );
    expect(render('chatml', conversation)).toBe(
      '<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n[Hello<|im_end|>\n]' +
        '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n[See you<|im_end|>\n]',
    );
    expect(render('llama2', conversation)).toBe(
      '<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST][ Hello </s>]<s>[INST] Bye [/INST][ See you </s>]',
    );
  });

  it('end generation prompts with the assistant header', () => {
    expect(render('default', prompt, true)).toBe('Human: Hi\nAssistant: ');
    expect(render('alpaca', prompt, true)).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nHi\n\n### Response:\n',
    );
    expect(render('vicuna', prompt, true)).toBe(
      "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: Hi ASSISTANT:",
    );
    expect(render('chatml', prompt, true)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(render('gemma', prompt, true)).toBe(
      '<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  it('mark a response with loss weight 0 as not trainable', () => {
    const weighted: Conversation = {
      turns: [
        conversation.turns[0],
        { ...conversation.turns[1], lossWeight: 0 },
        conversation.turns[2],
        conversation.turns[3],
      ],
    };
    const responses = builtinTemplate('chatml')
      .render(weighted)
      .segments.filter((segment) => segment.kind === 'response');
    expect(responses.map((segment) => segment.trainable)).toEqual([false, true]);
  });

  it('refuse tools where they have no format, unknown names and broken conversations', () => {
    const tool: Conversation = {
      turns: [
        { role: 'user', content: 'Weather?' },
        { role: 'function_call', content: '{}', toolCalls: [{ name: 'weather', arguments: {} }] },
        { role: 'observation', content: 'grey' },
        { role: 'assistant', content: 'Grey.' },
      ],
    };
    for (const name of [
      'default',
      'empty',
      'alpaca',
      'vicuna',
      'chatml',
      'llama2',
      'gemma',
      'phi',
      'deepseek_r1',
    ]) {
      expect(() => builtinTemplate(name).render(tool), name).toThrow(
        /has no tool-call format \(turn 2 is function_call\)/,
      );
    }
    for (const name of ['qwen', 'qwen3', 'llama3', 'mistral'])
      expect(() => builtinTemplate(name).render(tool), name).not.toThrow();
    expect(() => builtinTemplate('chatgpt')).toThrow(
      /unknown template "chatgpt"; built-in templates: default, empty/,
    );
    expect(() => builtinTemplate('chatml').render(prompt)).toThrow(
      'a training conversation must end with an assistant-side turn',
    );
    expect(() => builtinTemplate('chatml').render(conversation, { addGenerationPrompt: true })).toThrow(
      /generation prompt needs/,
    );
    expect(BUILTIN_TEMPLATE_NAMES).toEqual(
      expect.arrayContaining([
        'default',
        'empty',
        'alpaca',
        'vicuna',
        'chatml',
        'llama2',
        'llama3',
        'mistral',
        'qwen',
        'qwen3',
        'gemma',
        'phi',
      ]),
    );
  });
});
