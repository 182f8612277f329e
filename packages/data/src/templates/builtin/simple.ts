/**
 * Generic formats for models without a chat template of their own: `default`, `empty`, `alpaca`,
 * `vicuna` and `chatml`. None has a tool-call format. Each answer ends with the tokenizer's EOS token
 * (`chatml` with `<|im_end|>`), so the model learns to stop.
 */
import type { Conversation } from '../../formats/types.js';
import { type RenderContext, requireNoTools, trainable } from './builtin-template.js';

interface SimpleFormat {
  /** Text before the first user turn. */
  system(system: string | undefined): string;
  /** Prompt text of a user turn (with the assistant header that follows it). */
  user(content: string, index: number): string;
  /** Response text of an assistant turn. */
  assistant(content: string, eos: string): string;
}

function renderSimple(format: SimpleFormat) {
  return (conversation: Conversation, context: RenderContext): void => {
    requireNoTools(conversation, context.name);
    const { writer } = context;
    const eos = context.options.eosToken ?? '';
    writer.prompt(format.system(conversation.system));
    conversation.turns.forEach((turn, index) => {
      if (turn.role === 'user') writer.prompt(format.user(turn.content, index));
      else writer.response(format.assistant(turn.content, eos), index, trainable(conversation, index));
    });
  };
}

/** `System: ...` / `Human: ...` / `Assistant: ...` lines. */
export const renderDefault = renderSimple({
  system: (system) => (system ? `System: ${system}\n` : ''),
  user: (content, index) => `${index > 0 ? '\n' : ''}Human: ${content}\nAssistant: `,
  assistant: (content, eos) => content + eos,
});

/** The texts alone: system, user and assistant text joined by nothing but a newline after the system. */
export const renderEmpty = renderSimple({
  system: (system) => (system ? `${system}\n` : ''),
  user: (content) => content,
  assistant: (content, eos) => content + eos,
});

const ALPACA_SYSTEM =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

/** Stanford Alpaca: `### Instruction:` / `### Response:` sections under a default preamble. */
export const renderAlpaca = renderSimple({
  system: (system) => `${system ?? ALPACA_SYSTEM}\n\n`,
  user: (content, index) => `${index > 0 ? '\n\n' : ''}### Instruction:\n${content}\n\n### Response:\n`,
  assistant: (content, eos) => content + eos,
});

const VICUNA_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

/** Vicuna v1.1: `USER: ... ASSISTANT: ...` after a default preamble. */
export const renderVicuna = renderSimple({
  system: (system) => `${system ?? VICUNA_SYSTEM} `,
  user: (content) => `USER: ${content} ASSISTANT:`,
  assistant: (content, eos) => ` ${content}${eos}`,
});

/** ChatML: `<|im_start|>role\n...<|im_end|>\n` blocks. */
export const renderChatMl = renderSimple({
  system: (system) => (system ? `<|im_start|>system\n${system}<|im_end|>\n` : ''),
  user: (content) => `<|im_start|>user\n${content}<|im_end|>\n<|im_start|>assistant\n`,
  assistant: (content) => `${content}<|im_end|>\n`,
});
