/**
 * Mistral (`mistral`) format as in the official Mistral-Nemo template (fixture
 * mistralai-Mistral-Nemo-Instruct-2407.jinja): `<s>[INST]user[/INST]answer</s>`, tools before the last user
 * message, tool calls as `[TOOL_CALLS]` and results as `[TOOL_RESULTS]`. Like the official template, the
 * system prompt is only shown before the last user message of a conversation that ends with it (a
 * generation prompt); in training conversations it is left out, and the render says so in a warning.
 */
import type { Conversation, ToolDefinition } from '../../formats/types.js';
import { toChatMessages } from '../messages.js';
import { pythonJsonDumps } from '../python-json.js';
import { TemplateError } from '../types.js';
import { type RenderContext, trainable } from './builtin-template.js';

function toolText(tool: ToolDefinition): string {
  const fields = Object.entries(tool.function)
    .filter(([key]) => key !== 'return')
    .map(([key, value]) =>
      typeof value === 'string' ? `"${key}": "${value}"` : `"${key}": ${pythonJsonDumps(value)}`,
    );
  return `{"type": "function", "function": {${fields.join(', ')}}}`;
}

/** Mistral-Nemo instruct format. */
export function renderMistral(conversation: Conversation, context: RenderContext): void {
  const { writer } = context;
  const eos = context.options.eosToken ?? '</s>';
  const { messages, messageOfTurn } = toChatMessages(conversation);
  const turns = conversation.turns;
  const lastUser = [...turns].reverse().find((turn) => turn.role === 'user');
  const tools = conversation.tools && conversation.tools.length > 0 ? conversation.tools : undefined;
  let position = 0;
  turns.forEach((turn, index) => {
    if (turn.role !== 'user' && turn.role !== 'assistant') return;
    if ((turn.role === 'user') !== (position % 2 === 0)) {
      throw new TemplateError(
        'the mistral template needs user and assistant messages to alternate (tool turns aside)',
        index,
      );
    }
    position++;
  });
  writer.prompt(context.options.bosToken ?? '<s>');
  if (conversation.system && !context.addGenerationPrompt) {
    context.warnings.push(
      'the mistral template shows the system prompt only before a generation prompt; it is left out',
    );
  }
  turns.forEach((turn, index) => {
    const message = messages[messageOfTurn[index]];
    switch (turn.role) {
      case 'user': {
        // The official template compares messages by value, so an equal earlier message also gets the tools.
        if (tools && lastUser && turn.content === lastUser.content) {
          writer.prompt(`[AVAILABLE_TOOLS][${tools.map(toolText).join(', ')}][/AVAILABLE_TOOLS]`);
        }
        const isLast = index === turns.length - 1;
        const system = isLast && conversation.system ? `${conversation.system}\n\n` : '';
        writer.prompt(`[INST]${system}${turn.content}[/INST]`);
        break;
      }
      case 'assistant':
        writer.response(`${turn.content}${eos}`, index, trainable(conversation, index));
        break;
      case 'function_call': {
        const calls = (message.tool_calls ?? []).map((call) => {
          const body = pythonJsonDumps(call.function);
          return `${body.slice(0, -1)}, "id": "${call.id}"}`;
        });
        writer.response(`[TOOL_CALLS][${calls.join(', ')}]${eos}`, index, trainable(conversation, index));
        break;
      }
      case 'observation':
        writer.prompt(
          `[TOOL_RESULTS]{"content": ${turn.content}, "call_id": "${message.tool_call_id}"}[/TOOL_RESULTS]`,
        );
        break;
    }
  });
}
