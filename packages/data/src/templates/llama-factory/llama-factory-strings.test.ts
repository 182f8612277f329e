/**
 * The text of LLaMA-Factory's templates, written out by hand from the definitions in its
 * `src/llamafactory/data/template.py` (slots, default system, EOS rules, efficient_eos, thought words)
 * and its `tool_utils.py` formats. The ids are tested against LLaMA-Factory itself in
 * llama-factory-goldens.test.ts; this file shows what each template writes.
 */
import { describe, expect, it } from 'vitest';
import type { Conversation } from '../../formats/types.js';
import { renderText, TemplateError } from '../types.js';
import { llamaFactoryTemplate, TEMPLATE_NAMES } from './index.js';

const tokens = { bosToken: '<s>', eosToken: '</s>' };
const one: Conversation = {
  system: 'S',
  turns: [
    { role: 'user', content: 'q' },
    { role: 'assistant', content: 'a' },
  ],
};
const noSystem: Conversation = { turns: one.turns };
const text = (name: string, conversation: Conversation, options = {}) =>
  renderText(llamaFactoryTemplate(name, { ...tokens, ...options }), conversation);
const prompt = (name: string, conversation: Conversation, options = {}) =>
  renderText(llamaFactoryTemplate(name, { ...tokens, ...options }), conversation, {
    addGenerationPrompt: true,
  });
const question: Conversation = { turns: [{ role: 'user', content: 'q' }] };

describe('LLaMA-Factory template texts', () => {
  it('default: Human/Assistant lines with EOS after the system, the user text and the answer', () => {
    expect(text('default', one)).toBe('System: S</s>\nHuman: q</s>\nAssistant:a</s>\n');
    expect(prompt('default', question)).toBe('Human: q</s>\nAssistant:');
  });

  it('empty: the texts alone, no EOS; fewshot: a blank line after each answer', () => {
    expect(text('empty', one)).toBe('Sqa');
    expect(text('fewshot', noSystem)).toBe('qa\n\n');
  });

  it('alpaca and vicuna with their default system prompts', () => {
    expect(text('alpaca', noSystem)).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
        '### Instruction:\nq\n\n### Response:\na</s>\n\n',
    );
    expect(text('vicuna', noSystem)).toBe(
      'A chat between a curious user and an artificial intelligence assistant. ' +
        "The assistant gives helpful, detailed, and polite answers to the user's questions.USER: q ASSISTANT:a</s>",
    );
  });

  it('llama2, mistral and gemma put the system text into the first user message', () => {
    expect(text('llama2', one)).toBe('<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nq [/INST]a</s>');
    expect(text('mistral', one)).toBe('<s>[INST] S\n\nq[/INST] a</s>');
    expect(text('gemma', one, { bosToken: '<bos>' })).toBe(
      '<bos><start_of_turn>user\nS\n\nq<end_of_turn>\n<start_of_turn>model\na<end_of_turn>\n',
    );
  });

  it('llama3, phi and chatml; replace_eos templates end answers with their stop word', () => {
    expect(text('llama3', one, { bosToken: '<|begin_of_text|>' })).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\na<|eot_id|>',
    );
    expect(text('phi', one)).toBe('<|system|>\nS<|end|>\n<|user|>\nq<|end|>\n<|assistant|>\na<|end|>\n');
    expect(text('chatml', one)).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n',
    );
  });

  it('qwen3 puts an empty thought in trained answers; with thinking off it goes into the prompt', () => {
    const turns = '<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n';
    expect(text('qwen3', noSystem)).toBe(`${turns}<think>\n\n</think>\n\na<|im_end|>\n`);
    expect(prompt('qwen3', question)).toBe(turns);
    expect(prompt('qwen3', question, { enableThinking: false })).toBe(`${turns}<think>\n\n</think>\n\n`);
    // A written thought is kept with thinking on and removed with it off.
    const thought: Conversation = {
      turns: [question.turns[0], { role: 'assistant', content: '<think>\nhm\n</think>\n\na' }],
    };
    expect(text('qwen3', thought)).toBe(`${turns}<think>\nhm\n</think>\n\na<|im_end|>\n`);
    expect(text('qwen3', thought, { enableThinking: false })).toBe(
      `${turns}<think>\n\n</think>\n\na<|im_end|>\n`,
    );
    // qwen3_nothink is a plain template: no thought block at all; qwen has a default system prompt.
    expect(text('qwen3_nothink', noSystem)).toBe(`${turns}a<|im_end|>\n`);
    expect(text('qwen', noSystem)).toBe(
      `<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n${turns}a<|im_end|>\n`,
    );
  });

  it('deepseekr1 (alias deepseek_r1) is a reasoning template after BOS', () => {
    const template = llamaFactoryTemplate('deepseek_r1', {
      bosToken: '<｜begin▁of▁sentence｜>',
      eosToken: '<｜end▁of▁sentence｜>',
    });
    expect(template.name).toBe('deepseekr1');
    expect(renderText(template, noSystem)).toBe(
      '<｜begin▁of▁sentence｜><｜User｜>q<｜Assistant｜><think>\n\n</think>\n\na<｜end▁of▁sentence｜>',
    );
    expect(renderText(template, question, { addGenerationPrompt: true })).toBe(
      '<｜begin▁of▁sentence｜><｜User｜>q<｜Assistant｜>',
    );
  });

  it('tool formats: default, qwen, llama3, mistral and glm4', () => {
    const tools: Conversation['tools'] = [
      {
        type: 'function',
        function: {
          name: 'f',
          description: 'D',
          parameters: {
            type: 'object',
            properties: { x: { type: 'integer', description: 'X' } },
            required: ['x'],
          },
        },
      },
    ];
    const call: Conversation = {
      tools,
      turns: [
        { role: 'user', content: 'q' },
        { role: 'function_call', content: '{"name": "f", "arguments": {"x": 1}}' },
        { role: 'observation', content: '2' },
        { role: 'assistant', content: 'a' },
      ],
    };
    expect(text('default', call)).toBe(
      'System: You have access to the following tools:\n' +
        '> Tool Name: f\nTool Description: D\nTool Args:\n  - x (integer, required): X\n\n' +
        'Use the following format if using a tool:\n```\nAction: tool name (one of [f])\n' +
        'Action Input: the input to the tool, in a JSON format representing the kwargs ' +
        '(e.g. ```{"input": "hello world", "num_beams": 5}```)\n```\n</s>\n' +
        'Human: q</s>\nAssistant:Action: f\nAction Input: {"x": 1}</s>\nHuman: 2</s>\nAssistant:a</s>\n',
    );
    const qwen = text('qwen', call);
    expect(qwen).toContain(
      '<tools>\n{"type": "function", "function": {"name": "f", "description": "D", "parameters": {"type": "object", "properties": {"x": {"type": "integer", "description": "X"}}, "required": ["x"]}}}\n</tools>',
    );
    expect(qwen).toContain(
      '<|im_start|>assistant\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n2\n</tool_response><|im_end|>\n<|im_start|>assistant\na<|im_end|>\n',
    );
    const llama3 = text('llama3', call, { date: new Date(Date.UTC(2026, 0, 5)) });
    expect(llama3).toContain('Cutting Knowledge Date: December 2023\nToday Date: 05 Jan 2026\n\n');
    expect(llama3).toContain(
      '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "f", "parameters": {"x": 1}}<|eot_id|>',
    );
    expect(text('mistral', call)).toContain(
      '[INST] [AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "f"',
    );
    expect(text('mistral', call)).toContain(
      '[/INST][TOOL_CALLS] [{"name": "f", "arguments": {"x": 1}}]</s>[TOOL_RESULTS] {"content": 2}[/TOOL_RESULTS]',
    );
    expect(text('glm4', call)).toContain('<|assistant|>f\n{"x": 1}<|observation|>\n2<|assistant|>\na');
    // tool_format replaces a template's format; the calls end with EOS, which qwen replaces by <|im_end|>.
    expect(text('qwen', call, { toolFormat: 'default' })).toContain(
      '<|im_start|>assistant\nAction: f\nAction Input: {"x": 1}<|im_end|><|im_start|>user',
    );
  });

  it('has every family name and refuses unknown ones', () => {
    for (const name of [
      'llama2',
      'llama3',
      'mistral',
      'qwen',
      'qwen3',
      'qwen3_nothink',
      'gemma',
      'gemma2',
      'gemma3',
      'phi',
      'phi4',
      'smollm',
      'smollm2',
      'deepseek',
      'deepseekr1',
      'chatml',
      'default',
      'empty',
      'alpaca',
      'vicuna',
      'zephyr',
      'cpm4',
      'glm4',
    ]) {
      expect(TEMPLATE_NAMES).toContain(name);
    }
    expect(() => llamaFactoryTemplate('qwen4')).toThrow(TemplateError);
    expect(() => llamaFactoryTemplate('qwen4')).toThrow(/unknown template "qwen4"/);
  });
});
