import { requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import {
  conversationOf,
  goldenCases,
  goldens,
  templateSource,
} from '../test-support/chat-template-goldens.js';
import { formatDate, JinjaChatTemplate } from './jinja-template.js';
import { toChatMessages } from './messages.js';
import { renderText, TemplateError } from './types.js';

function template(file: string, enableThinking?: boolean): JinjaChatTemplate {
  const tokens = goldens.specialTokens[file];
  return new JinjaChatTemplate(templateSource(file), {
    bosToken: tokens.bos_token,
    eosToken: tokens.eos_token,
    enableThinking,
  });
}

function responses(file: string, caseName: string, enableThinking?: boolean) {
  const rendered = template(file, enableThinking).render(conversationOf(goldenCases.get(caseName)!));
  return {
    responses: rendered.segments
      .filter((segment) => segment.kind === 'response')
      .map((segment) => segment.text),
    turns: rendered.segments.filter((segment) => segment.kind === 'response').map((segment) => segment.turn),
    text: rendered.segments.map((segment) => segment.text).join(''),
    warnings: rendered.warnings,
  };
}

describe.skipIf(!requireFixtures('chat_templates/Qwen-Qwen3-0.6B.jinja'))(
  'official chat templates rendered with @huggingface/jinja',
  () => {
    it('match Python Jinja2 on every template and conversation (multi-turn, system, tools, generation prompt)', () => {
      expect(goldens.results).toHaveLength(80);
      let rendered = 0;
      for (const result of goldens.results) {
        const item = goldenCases.get(result.case)!;
        const jinja = template(result.template, item.extra?.enable_thinking);
        const run = () =>
          jinja.renderMessages(item.messages, item.tools, item.add_generation_prompt ?? false);
        if (result.output !== undefined) {
          expect(run(), `${result.template} / ${result.case}`).toBe(result.output);
          rendered++;
        } else {
          expect(run, `${result.template} / ${result.case}`).toThrow(TemplateError);
          expect(run).toThrow(result.error!.replace(/^TemplateError: /, ''));
        }
      }
      expect(rendered).toBe(76);
    });

    it('renders our conversations into the same messages the goldens used', () => {
      for (const item of goldens.cases) {
        const { messages } = toChatMessages(conversationOf(item));
        expect(messages.map((message) => ({ ...message }))).toEqual(
          item.messages.map((message) => {
            const copy = { ...message } as Record<string, unknown>;
            return copy;
          }),
        );
      }
    });

    it('splits training conversations into prompt and response segments that join to the full text', () => {
      for (const result of goldens.results) {
        const item = goldenCases.get(result.case)!;
        if (item.add_generation_prompt || result.output === undefined) continue;
        const conversation = conversationOf(item);
        let text: string;
        try {
          text = renderText(template(result.template), conversation);
        } catch (error) {
          // Only templates that leave a tool call out may refuse a conversation they render.
          expect(error, `${result.template} / ${result.case}`).toBeInstanceOf(TemplateError);
          expect(result.case).toMatch(/^tool-call/);
          expect(result.template).toMatch(/Phi-3.5|DeepSeek-R1/);
          continue;
        }
        expect(text, `${result.template} / ${result.case}`).toBe(result.output);
      }
    });

    it('finds each response with its end-of-turn marks', () => {
      expect(responses('Qwen-Qwen3-0.6B.jinja', 'multi-turn')).toMatchObject({
        responses: ['4<|im_end|>\n', '<think>\n\n</think>\n\n6, of course. <|im_end|>\n'],
        turns: [1, 3],
      });
      // [template file, golden case, the responses with their end-of-turn marks]
      const expected: [string, string, string[]][] = [
        [
          'Qwen-Qwen3-0.6B.jinja',
          'reasoning',
          ['It is 4.<|im_end|>\n', '<think>\nAdd three and three.\n</think>\n\nIt is 6.<|im_end|>\n'],
        ],
        [
          'Qwen-Qwen3-0.6B.jinja',
          'tool-call',
          [
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n',
            '<think>\n\n</think>\n\nIt is 21 degrees and clear in Paris.<|im_end|>\n',
          ],
        ],
        [
          'Qwen-Qwen2.5-7B-Instruct.jinja',
          'tool-call',
          [
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n',
            'It is 21 degrees and clear in Paris.<|im_end|>\n',
          ],
        ],
        [
          'meta-llama-Llama-3.1-8B-Instruct.jinja',
          'tool-call',
          [
            '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
            'It is 21 degrees and clear in Paris.<|eot_id|>',
          ],
        ],
        ['meta-llama-Llama-3.2-3B-Instruct.jinja', 'multi-turn', ['4<|eot_id|>', '6, of course.<|eot_id|>']],
        ['google-gemma-2-2b-it.jinja', 'multi-turn', ['4<end_of_turn>\n', '6, of course.<end_of_turn>\n']],
        // Phi-3.5 ends the conversation with EOS: it belongs to the last answer (trained), not to a prompt.
        [
          'microsoft-Phi-3.5-mini-instruct.jinja',
          'multi-turn',
          ['4<|end|>\n', '6, of course. <|end|>\n<|endoftext|>'],
        ],
        [
          'deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja',
          'reasoning',
          ['\n\nIt is 4.<｜end▁of▁sentence｜>', '\n\nIt is 6.<｜end▁of▁sentence｜>'],
        ],
      ];
      for (const [file, name, answers] of expected) {
        expect(responses(file, name).responses, `${file} / ${name}`).toEqual(answers);
      }
      const mistral = responses('mistralai-Mistral-Nemo-Instruct-2407.jinja', 'tool-call');
      expect(mistral.responses).toEqual([
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call00001"}]</s>',
        'It is 21 degrees and clear in Paris.</s>',
      ]);
      // Mistral-Nemo's template only shows the system prompt before a final user message.
      expect(mistral.warnings).toEqual([
        'the chat template jinja leaves out the system prompt of this conversation',
      ]);
    });

    it('puts the empty think block into the prompt when thinking is off, and drops reasoning', () => {
      expect(responses('Qwen-Qwen3-0.6B.jinja', 'multi-turn', false).responses).toEqual([
        '4<|im_end|>\n',
        '6, of course. <|im_end|>\n',
      ]);
      const reasoning = responses('Qwen-Qwen3-0.6B.jinja', 'reasoning', false);
      expect(reasoning.responses).toEqual(['It is 4.<|im_end|>\n', 'It is 6.<|im_end|>\n']);
      expect(reasoning.text).toContain('<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 6.');
    });

    it('rejects conversations a template leaves out or refuses', () => {
      const phi = template('microsoft-Phi-3.5-mini-instruct.jinja');
      const toolCall = conversationOf(goldenCases.get('tool-call')!);
      expect(() => phi.render({ ...toolCall, tools: undefined })).toThrow(
        /cannot find assistant turn 2|leaves out observation turn 3/,
      );
      const gemma = template('google-gemma-2-2b-it.jinja');
      expect(() => gemma.render(conversationOf(goldenCases.get('system-multi-turn')!))).toThrow(
        'the chat template raised: System role not supported',
      );
    });

    it('formats dates in English whatever the locale', () => {
      expect(formatDate(new Date(Date.UTC(2024, 6, 26)), '%d %b %Y')).toBe('26 Jul 2024');
      expect(formatDate(new Date(Date.UTC(2025, 0, 5, 9, 7, 3)), '%Y-%m-%d %H:%M:%S %B %%')).toBe(
        '2025-01-05 09:07:03 January %',
      );
    });
  },
);
