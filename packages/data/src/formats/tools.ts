/** Parsing tool definitions and function calls as they appear in ShareGPT and OpenAI rows. */
import type { RowChecker } from './row-checks.js';
import type { ToolCall, ToolDefinition } from './types.js';

/**
 * Tool definitions from a `tools` cell: JSON text or a list of `{name, description, parameters}` (as in
 * glaive_toolcall) or of `{type: "function", function: {...}}`. Empty values give `undefined`.
 */
export function parseTools(value: unknown, field: string, checker: RowChecker): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  let parsed = value;
  if (typeof value === 'string') {
    if (value.trim().length === 0) return undefined;
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      checker.reject(field, 'a JSON list of tool definitions', value, (error as Error).message);
    }
  }
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) parsed = [parsed];
  if (!Array.isArray(parsed)) return checker.reject(field, 'a JSON list of tool definitions', value);
  if (parsed.length === 0) return undefined;
  return parsed.map((entry, index) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      return checker.reject(`${field}[${index}]`, 'a tool definition object', entry);
    }
    const record = entry as Record<string, unknown>;
    if (record.type === 'function' && record.function && typeof record.function === 'object') {
      const inner = record.function as Record<string, unknown>;
      if (typeof inner.name !== 'string' || inner.name.length === 0) {
        checker.reject(`${field}[${index}].function.name`, 'a tool name', inner.name);
      }
      return record as unknown as ToolDefinition;
    }
    if (typeof record.name !== 'string' || record.name.length === 0) {
      checker.reject(`${field}[${index}].name`, 'a tool name', record.name);
    }
    return { type: 'function', function: record as ToolDefinition['function'] };
  });
}

/**
 * The calls in a function-call turn: JSON text `{"name": ..., "arguments": {...}}` or a list of such.
 * Arguments given as JSON text are parsed.
 */
export function parseFunctionCalls(content: unknown, field: string, checker: RowChecker): ToolCall[] {
  const expected = 'a JSON function call {"name": ..., "arguments": {...}} or a list of them';
  let parsed = content;
  if (typeof content === 'string') {
    try {
      parsed = JSON.parse(content);
    } catch (error) {
      checker.reject(field, expected, content, (error as Error).message);
    }
  }
  const calls = Array.isArray(parsed) ? parsed : [parsed];
  if (calls.length === 0) checker.reject(field, expected, content);
  return calls.map((call) => {
    if (call === null || typeof call !== 'object' || Array.isArray(call))
      return checker.reject(field, expected, content);
    const record = call as Record<string, unknown>;
    // OpenAI tool_calls entries wrap the call in `function`.
    const inner = (
      record.function && typeof record.function === 'object' ? record.function : record
    ) as Record<string, unknown>;
    if (typeof inner.name !== 'string' || inner.name.length === 0)
      return checker.reject(field, expected, content);
    let argumentsValue = inner.arguments ?? inner.parameters ?? {};
    if (typeof argumentsValue === 'string') {
      try {
        argumentsValue = JSON.parse(argumentsValue);
      } catch {
        // Keep arguments that are not JSON as text; templates print them as given.
      }
    }
    return { name: inner.name, arguments: argumentsValue };
  });
}

/** The JSON text of calls, in the form ShareGPT rows store a function-call turn. */
export function functionCallText(calls: readonly ToolCall[]): string {
  const plain = calls.map((call) => ({ name: call.name, arguments: call.arguments }));
  return JSON.stringify(plain.length === 1 ? plain[0] : plain);
}
