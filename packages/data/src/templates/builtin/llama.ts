/**
 * Llama 2 (`llama2`) and Llama 3.x (`llama3`) chat formats. `llama3` gives the same text as the official
 * Llama 3.1 / 3.2 templates (fixtures meta-llama-Llama-3.*-Instruct.jinja) without built-in tools:
 * a system header with the knowledge cutoff and date, tools in the first user message, one tool call per
 * assistant turn, tool results as `ipython` messages.
 */
import type { Conversation } from '../../formats/types.js';
import { formatDate } from '../jinja-template.js';
import { pythonJsonDumps, pythonStrip } from '../python-json.js';
import { TemplateError } from '../types.js';
import { type RenderContext, requireNoTools, trainable } from './builtin-template.js';

const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;

/** Llama 3.1 / 3.2 instruct format. */
export function renderLlama3(conversation: Conversation, context: RenderContext): void {
  const { writer } = context;
  const tools = conversation.tools && conversation.tools.length > 0 ? conversation.tools : undefined;
  const date = formatDate(context.options.date ?? new Date(Date.UTC(2024, 6, 26)), '%d %b %Y');
  let system = (context.options.bosToken ?? '<|begin_of_text|>') + header('system');
  if (tools) system += 'Environment: ipython\n';
  system += `Cutting Knowledge Date: December 2023\nToday Date: ${date}\n\n`;
  system += `${pythonStrip(conversation.system ?? '')}<|eot_id|>`;
  writer.prompt(system);

  let first = 0;
  if (tools) {
    // Tools go into the first user message, with the official wording.
    const user = conversation.turns[0];
    if (user === undefined || user.role !== 'user') {
      throw new TemplateError(
        'the llama3 template puts tools into the first user message, and there is none',
        0,
      );
    }
    let text = header('user');
    text += 'Given the following functions, please respond with a JSON for a function call ';
    text += 'with its proper arguments that best answers the given prompt.\n\n';
    text +=
      'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.';
    text += 'Do not use variables.\n\n';
    for (const tool of tools) text += `${pythonJsonDumps(tool, 4)}\n\n`;
    writer.prompt(`${text}${pythonStrip(user.content)}<|eot_id|>`);
    first = 1;
  }

  for (let index = first; index < conversation.turns.length; index++) {
    const turn = conversation.turns[index];
    switch (turn.role) {
      case 'user':
        writer.prompt(`${header('user')}${pythonStrip(turn.content)}<|eot_id|>`);
        break;
      case 'observation':
        // The official template prints tool results with `tojson`, so text comes out quoted.
        writer.prompt(`${header('ipython')}${pythonJsonDumps(turn.content)}<|eot_id|>`);
        break;
      case 'assistant':
        writer.prompt(header('assistant'));
        writer.response(`${pythonStrip(turn.content)}<|eot_id|>`, index, trainable(conversation, index));
        break;
      case 'function_call': {
        const calls = turn.toolCalls ?? [];
        if (calls.length !== 1) {
          throw new TemplateError('the llama3 template supports one tool call per assistant turn', index);
        }
        writer.prompt(header('assistant'));
        const call = calls[0];
        const text = `{"name": "${call.name}", "parameters": ${pythonJsonDumps(call.arguments)}}<|eot_id|>`;
        writer.response(text, index, trainable(conversation, index));
        break;
      }
    }
  }
  if (context.addGenerationPrompt) writer.prompt(header('assistant'));
}

/** Llama 2 chat format: `<s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s>`. */
export function renderLlama2(conversation: Conversation, context: RenderContext): void {
  requireNoTools(conversation, context.name);
  const { writer } = context;
  const bos = context.options.bosToken ?? '<s>';
  const eos = context.options.eosToken ?? '</s>';
  conversation.turns.forEach((turn, index) => {
    if (turn.role === 'user') {
      const system =
        index === 0 && conversation.system ? `<<SYS>>\n${conversation.system}\n<</SYS>>\n\n` : '';
      writer.prompt(`${bos}[INST] ${system}${pythonStrip(turn.content)} [/INST]`);
    } else {
      writer.response(` ${pythonStrip(turn.content)} ${eos}`, index, trainable(conversation, index));
    }
  });
}
