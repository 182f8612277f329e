/**
 * Qwen2.5 (`qwen`) and Qwen3 (`qwen3`) chat formats, written to give the same text as the official Jinja
 * templates (fixtures Qwen-Qwen2.5-7B-Instruct.jinja and Qwen-Qwen3-0.6B.jinja), tools included.
 */
import type { Conversation, ToolCall, ToolDefinition } from '../../formats/types.js';
import { splitReasoning } from '../messages.js';
import { pythonJsonDumps, stripCharacters } from '../python-json.js';
import { type RenderContext, trainable } from './builtin-template.js';

const QWEN_DEFAULT_SYSTEM = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.';
const TOOLS_HEADER =
  '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
  'You are provided with function signatures within <tools></tools> XML tags:\n<tools>';
const TOOLS_FOOTER =
  '\n</tools>\n\nFor each function call, return a json object with function name and arguments within ' +
  '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n';

function toolsBlock(tools: readonly ToolDefinition[]): string {
  return TOOLS_HEADER + tools.map((tool) => '\n' + pythonJsonDumps(tool)).join('') + TOOLS_FOOTER;
}

function toolCallText(call: ToolCall, argumentsAsGiven: boolean): string {
  const argumentsText =
    argumentsAsGiven && typeof call.arguments === 'string' ? call.arguments : pythonJsonDumps(call.arguments);
  return `<tool_call>\n{"name": "${call.name}", "arguments": ${argumentsText}}\n</tool_call>`;
}

/** Tool results: consecutive observations share one user block; ours alternate, so each has its own. */
function observation(content: string): string {
  return `<|im_start|>user\n<tool_response>\n${content}\n</tool_response><|im_end|>\n`;
}

/** Qwen2.5: a default system prompt, tools in the system block, tool calls as `<tool_call>` JSON. */
export function renderQwen(conversation: Conversation, context: RenderContext): void {
  const { writer } = context;
  const system = conversation.system ?? QWEN_DEFAULT_SYSTEM;
  if (conversation.tools && conversation.tools.length > 0) {
    writer.prompt(`<|im_start|>system\n${system}\n\n${toolsBlock(conversation.tools)}`);
  } else {
    writer.prompt(`<|im_start|>system\n${system}<|im_end|>\n`);
  }
  conversation.turns.forEach((turn, index) => {
    switch (turn.role) {
      case 'user':
        writer.prompt(`<|im_start|>user\n${turn.content}<|im_end|>\n`);
        break;
      case 'observation':
        writer.prompt(observation(turn.content));
        break;
      case 'assistant':
        writer.prompt('<|im_start|>assistant\n');
        writer.response(`${turn.content}<|im_end|>\n`, index, trainable(conversation, index));
        break;
      case 'function_call': {
        writer.prompt('<|im_start|>assistant\n');
        const calls = (turn.toolCalls ?? []).map((call) => toolCallText(call, false)).join('\n');
        writer.response(`${calls}<|im_end|>\n`, index, trainable(conversation, index));
        break;
      }
    }
  });
  if (context.addGenerationPrompt) writer.prompt('<|im_start|>assistant\n');
}

/**
 * Qwen3: no default system prompt; assistant turns after the last user query get a think block (empty
 * when the turn has no reasoning), earlier ones lose theirs; with thinking off the generation prompt
 * carries the empty think block, and so does the prompt side of the final turn.
 */
export function renderQwen3(conversation: Conversation, context: RenderContext): void {
  const { writer } = context;
  const thinking = context.options.enableThinking !== false;
  if (conversation.tools && conversation.tools.length > 0) {
    const system = conversation.system ? `${conversation.system}\n\n` : '';
    writer.prompt(`<|im_start|>system\n${system}${toolsBlock(conversation.tools)}`);
  } else if (conversation.system) {
    writer.prompt(`<|im_start|>system\n${conversation.system}<|im_end|>\n`);
  }

  // The last user turn that is not a wrapped tool response; think blocks are shown only after it.
  let lastQuery = conversation.turns.length - 1;
  for (let index = conversation.turns.length - 1; index >= 0; index--) {
    const turn = conversation.turns[index];
    const wrapped = turn.content.startsWith('<tool_response>') && turn.content.endsWith('</tool_response>');
    if (turn.role === 'user' && !wrapped) {
      lastQuery = index;
      break;
    }
  }

  const last = conversation.turns.length - 1;
  conversation.turns.forEach((turn, index) => {
    if (turn.role === 'user') {
      writer.prompt(`<|im_start|>user\n${turn.content}<|im_end|>\n`);
      return;
    }
    if (turn.role === 'observation') {
      writer.prompt(observation(turn.content));
      return;
    }
    const raw = turn.role === 'assistant' ? turn.content : '';
    let content = raw;
    let reasoning = '';
    if (raw.includes('</think>')) {
      const parts = splitReasoning(raw);
      content = stripCharacters(parts.answer, '\n', 'left');
      reasoning = stripCharacters(stripCharacters(parts.reasoning ?? '', '\n', 'right'), '\n', 'left');
    }
    writer.prompt('<|im_start|>assistant\n');
    let text: string;
    if (index > lastQuery && (index === last || reasoning.length > 0)) {
      const block = `<think>\n${stripCharacters(reasoning, '\n', 'both')}\n</think>\n\n`;
      // With thinking off, an empty think block is part of the prompt the model is given.
      if (!thinking && reasoning.length === 0) {
        writer.prompt(block);
        text = stripCharacters(content, '\n', 'left');
      } else text = block + stripCharacters(content, '\n', 'left');
    } else text = content;
    (turn.toolCalls ?? []).forEach((call, callIndex) => {
      if ((callIndex === 0 && content.length > 0) || callIndex > 0) text += '\n';
      text += toolCallText(call, true);
    });
    writer.response(`${text}<|im_end|>\n`, index, trainable(conversation, index));
  });
  if (context.addGenerationPrompt) {
    writer.prompt('<|im_start|>assistant\n');
    if (!thinking) writer.prompt('<think>\n\n</think>\n\n');
  }
}
