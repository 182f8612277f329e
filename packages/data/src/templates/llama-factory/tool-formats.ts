/**
 * Tool-call formats with LLaMA-Factory's names and output (its `tool_utils.py`): how the tool list is
 * written into the system message, and how an assistant's calls are written. JSON is written as
 * Python's `json.dumps(..., ensure_ascii=False)` does.
 */
import type { ToolDefinition } from '../../formats/types.js';
import { formatDate } from '../jinja-template.js';
import { pythonJsonDumps } from '../python-json.js';
import { TemplateError } from '../types.js';
import type { ToolFormatName } from './slots.js';

/** A call as LLaMA-Factory's `FunctionCall`: a name and the arguments (any JSON value). */
export interface FunctionCall {
  name: string;
  arguments: unknown;
}

/** What a tool format writes. */
export interface ToolFormat {
  /** The tool list, appended to the system text. */
  tools(tools: readonly ToolDefinition[], date: Date): string;
  /** The calls of one assistant message. */
  calls(calls: readonly FunctionCall[]): string;
}

type Tool = ToolDefinition | Record<string, unknown>;

/** The function object of a tool, unwrapping `{type: 'function', function}`. */
function functionOf(tool: Tool): Record<string, unknown> {
  const record = tool as Record<string, unknown>;
  return record.type === 'function' ? ((record.function ?? {}) as Record<string, unknown>) : record;
}

/** The tool wrapped as `{type: 'function', function}`. */
function wrapped(tool: Tool): unknown {
  const record = tool as Record<string, unknown>;
  return record.type === 'function' ? record : { type: 'function', function: record };
}

const text = (value: unknown): string => (value === undefined || value === null ? '' : String(value));

const DEFAULT_FORMAT: ToolFormat = {
  tools(tools) {
    let toolText = '';
    const names: string[] = [];
    for (const tool of tools) {
      const fn = functionOf(tool);
      const parameters = (fn.parameters ?? {}) as Record<string, unknown>;
      const properties = (parameters.properties ?? {}) as Record<string, Record<string, unknown>>;
      const required = Array.isArray(parameters.required) ? (parameters.required as unknown[]) : [];
      let parameterText = '';
      for (const [name, parameter] of Object.entries(properties)) {
        const isRequired = required.includes(name) ? ', required' : '';
        const enumText =
          Array.isArray(parameter.enum) && parameter.enum.length > 0
            ? `, should be one of [${parameter.enum.map(text).join(', ')}]`
            : '';
        const items = parameter.items as Record<string, unknown> | undefined;
        const itemsText =
          items && Object.keys(items).length > 0 ? `, where each item should be ${text(items.type)}` : '';
        parameterText += `  - ${name} (${text(parameter.type)}${isRequired}): ${text(parameter.description)}${enumText}${itemsText}\n`;
      }
      toolText += `> Tool Name: ${text(fn.name)}\nTool Description: ${text(fn.description)}\nTool Args:\n${parameterText}\n`;
      names.push(text(fn.name));
    }
    return (
      `You have access to the following tools:\n${toolText}` +
      'Use the following format if using a tool:\n```\n' +
      `Action: tool name (one of [${names.join(', ')}])\n` +
      'Action Input: the input to the tool, in a JSON format representing the kwargs ' +
      '(e.g. ```{"input": "hello world", "num_beams": 5}```)\n```\n'
    );
  },
  calls(calls) {
    return calls
      .map((call) => `Action: ${call.name}\nAction Input: ${pythonJsonDumps(call.arguments)}`)
      .join('\n');
  },
};

const GLM4_FORMAT: ToolFormat = {
  tools(tools) {
    let toolText = '';
    for (const tool of tools) {
      const fn = functionOf(tool);
      toolText += `\n\n## ${text(fn.name)}\n\n${pythonJsonDumps(fn, 4)}\n在调用上述函数时，请使用 Json 格式表示调用的参数。`;
    }
    return (
      '你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，' +
      `你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具${toolText}`
    );
  },
  calls(calls) {
    if (calls.length > 1)
      throw new TemplateError('the glm4 tool format has no parallel calls (one call per turn)');
    return `${calls[0].name}\n${pythonJsonDumps(calls[0].arguments)}`;
  },
};

const LLAMA3_FORMAT: ToolFormat = {
  tools(tools, date) {
    const toolText = tools.map((tool) => `${pythonJsonDumps(wrapped(tool), 4)}\n\n`).join('');
    return (
      `Cutting Knowledge Date: December 2023\nToday Date: ${formatDate(date, '%d %b %Y')}\n\n` +
      'You have access to the following functions. To call a function, please respond with JSON for a function call. ' +
      'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}. ' +
      `Do not use variables.\n\n${toolText}`
    );
  },
  calls(calls) {
    const objects = calls.map((call) => ({ name: call.name, parameters: call.arguments }));
    return pythonJsonDumps(objects.length === 1 ? objects[0] : objects);
  },
};

const MISTRAL_FORMAT: ToolFormat = {
  tools(tools) {
    return `[AVAILABLE_TOOLS] ${pythonJsonDumps(tools.map(wrapped))}[/AVAILABLE_TOOLS]`;
  },
  calls(calls) {
    return pythonJsonDumps(calls.map((call) => ({ name: call.name, arguments: call.arguments })));
  },
};

const QWEN_FORMAT: ToolFormat = {
  tools(tools) {
    const toolText = tools.map((tool) => `\n${pythonJsonDumps(wrapped(tool))}`).join('');
    return (
      '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
      `You are provided with function signatures within <tools></tools> XML tags:\n<tools>${toolText}` +
      '\n</tools>\n\nFor each function call, return a json object with function name and arguments within ' +
      '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, ' +
      '"arguments": <args-json-object>}\n</tool_call>'
    );
  },
  calls(calls) {
    return calls
      .map(
        (call) =>
          `<tool_call>\n${pythonJsonDumps({ name: call.name, arguments: call.arguments })}\n</tool_call>`,
      )
      .join('\n');
  },
};

/** The tool formats by LLaMA-Factory's name. */
export const TOOL_FORMATS: Record<ToolFormatName, ToolFormat> = {
  default: DEFAULT_FORMAT,
  glm4: GLM4_FORMAT,
  llama3: LLAMA3_FORMAT,
  mistral: MISTRAL_FORMAT,
  qwen: QWEN_FORMAT,
};

/** Names of the tool formats (LLaMA-Factory's `tool_format` values webtune has). */
export const TOOL_FORMAT_NAMES = Object.keys(TOOL_FORMATS) as ToolFormatName[];

/** The tool format of a name; throws `TemplateError` naming the known ones. */
export function toolFormat(name: string): ToolFormat {
  const format = (TOOL_FORMATS as Record<string, ToolFormat>)[name];
  if (!format) {
    throw new TemplateError(`unknown tool_format "${name}"; tool formats: ${TOOL_FORMAT_NAMES.join(', ')}`);
  }
  return format;
}
