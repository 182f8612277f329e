/**
 * The prompts of `webtune eval ab` and `webtune eval judge`: a text file with one prompt a line,
 * or JSON / JSON Lines whose items are strings, `{"prompt"}`, alpaca rows (`instruction`, `input`,
 * `system`) or OpenAI-style `{"messages"}` ending with a user message.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Conversation } from '@webtune/data';
import { UsageError } from '../ui.js';

/** A prompt: plain text, or a conversation that ends with a user turn. */
export type ComparisonPrompt = string | Conversation;

/** Reads and checks a prompts file; errors name the file and line (exit 1). */
export async function readPromptsFile(path: string): Promise<ComparisonPrompt[]> {
  if (!existsSync(path)) throw new UsageError(`--prompts "${path}" does not exist`, 1);
  if (!statSync(path).isFile()) throw new UsageError(`--prompts "${path}" is not a file`, 1);
  const prompts = parsePrompts(await readFile(path, 'utf8'), path);
  if (prompts.length === 0) throw new UsageError(`--prompts "${path}" holds no prompt`, 1);
  return prompts;
}

/** Parses prompts by the file's extension: `.json`, `.jsonl`, anything else is one prompt a line. */
export function parsePrompts(text: string, file: string): ComparisonPrompt[] {
  const extension = extname(file).toLowerCase();
  if (extension === '.json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new UsageError(`${file}: not valid JSON: ${(error as Error).message}`, 1);
    }
    if (!Array.isArray(value)) throw new UsageError(`${file}: expected a JSON array of prompts`, 1);
    return value.map((item, index) => promptOf(item, `${file}: item ${index}`));
  }
  const prompts: ComparisonPrompt[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim().length === 0) return;
    const where = `${file}:${index + 1}`;
    if (extension !== '.jsonl') {
      prompts.push(line.trim());
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new UsageError(`${where}: not valid JSON: ${(error as Error).message}`, 1);
    }
    prompts.push(promptOf(value, where));
  });
  return prompts;
}

const EXPECTED =
  'expected a string, {"prompt"}, {"instruction", "input"} or {"messages"} ending with a user message';

function promptOf(value: unknown, where: string): ComparisonPrompt {
  if (typeof value === 'string') {
    if (value.trim().length === 0) throw new UsageError(`${where}: the prompt is empty`, 1);
    return value;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${where}: ${EXPECTED}`, 1);
  }
  const row = value as Record<string, unknown>;
  const system = typeof row.system === 'string' && row.system.length > 0 ? row.system : undefined;
  let content: string | undefined;
  if (typeof row.prompt === 'string') content = row.prompt;
  else if (typeof row.instruction === 'string') {
    const input = typeof row.input === 'string' ? row.input : '';
    content = input.length > 0 ? `${row.instruction}\n${input}` : row.instruction;
  } else if (Array.isArray(row.messages)) {
    return conversationOf(row.messages, system, where);
  }
  if (content === undefined || content.trim().length === 0) {
    throw new UsageError(`${where}: ${EXPECTED}`, 1);
  }
  return system ? { system, turns: [{ role: 'user', content }] } : content;
}

function conversationOf(messages: unknown[], system: string | undefined, where: string): Conversation {
  const systems: string[] = system ? [system] : [];
  const turns: Conversation['turns'] = [];
  for (const [index, message] of messages.entries()) {
    const { role, content } = (message ?? {}) as { role?: unknown; content?: unknown };
    if (typeof content !== 'string') {
      throw new UsageError(`${where}: messages[${index}].content must be a string`, 1);
    }
    if (role === 'system' && turns.length === 0) {
      systems.push(content);
      continue;
    }
    const expected = turns.length % 2 === 0 ? 'user' : 'assistant';
    if (role !== expected) {
      throw new UsageError(
        `${where}: messages[${index}] should be a ${expected} message (system first, then user and assistant alternating)`,
        1,
      );
    }
    turns.push({ role: expected, content });
  }
  if (turns.length === 0 || turns[turns.length - 1].role !== 'user') {
    throw new UsageError(`${where}: the messages must end with a user message`, 1);
  }
  return { ...(systems.length > 0 ? { system: systems.join('\n') } : {}), turns };
}
