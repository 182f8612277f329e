/**
 * Gemma, Phi-3.5 and DeepSeek-R1 formats, written to give the same text as the official templates in the
 * fixtures for the conversations those templates accept. None of them has a tool-call format.
 */
import type { Conversation } from '../../formats/types.js';
import { splitReasoning } from '../messages.js';
import { pythonStrip } from '../python-json.js';
import { type RenderContext, requireNoTools, trainable } from './builtin-template.js';

/**
 * Gemma 2: `<start_of_turn>user` / `<start_of_turn>model`, trimmed text, `<end_of_turn>`. The official
 * template refuses a system prompt; here it is put before the first user message, as LLaMA-Factory does.
 */
export function renderGemma(conversation: Conversation, context: RenderContext): void {
  requireNoTools(conversation, context.name);
  const { writer } = context;
  writer.prompt(context.options.bosToken ?? '<bos>');
  conversation.turns.forEach((turn, index) => {
    if (turn.role === 'user') {
      const system = index === 0 && conversation.system ? `${conversation.system}\n\n` : '';
      writer.prompt(`<start_of_turn>user\n${pythonStrip(system + turn.content)}<end_of_turn>\n`);
    } else {
      writer.prompt('<start_of_turn>model\n');
      writer.response(`${pythonStrip(turn.content)}<end_of_turn>\n`, index, trainable(conversation, index));
    }
  });
  if (context.addGenerationPrompt) writer.prompt('<start_of_turn>model\n');
}

/** Phi-3.5: `<|system|>`, `<|user|>`, `<|assistant|>` blocks ending in `<|end|>`, and EOS after the last answer. */
export function renderPhi(conversation: Conversation, context: RenderContext): void {
  requireNoTools(conversation, context.name);
  const { writer } = context;
  if (conversation.system) writer.prompt(`<|system|>\n${conversation.system}<|end|>\n`);
  const last = conversation.turns.length - 1;
  conversation.turns.forEach((turn, index) => {
    if (turn.role === 'user') {
      writer.prompt(`<|user|>\n${turn.content}<|end|>\n`);
    } else {
      writer.prompt('<|assistant|>\n');
      const end = index === last ? (context.options.eosToken ?? '<|endoftext|>') : '';
      writer.response(`${turn.content}<|end|>\n${end}`, index, trainable(conversation, index));
    }
  });
  if (context.addGenerationPrompt) writer.prompt('<|assistant|>\n');
}

/**
 * DeepSeek-R1 (and its Qwen/Llama distills): system text right after BOS, `<｜User｜>` and `<｜Assistant｜>`
 * markers, reasoning removed from assistant turns, `<｜end▁of▁sentence｜>` after each answer; the generation
 * prompt opens a think block.
 */
export function renderDeepSeekR1(conversation: Conversation, context: RenderContext): void {
  requireNoTools(conversation, context.name);
  const { writer } = context;
  writer.prompt((context.options.bosToken ?? '<｜begin▁of▁sentence｜>') + (conversation.system ?? ''));
  conversation.turns.forEach((turn, index) => {
    if (turn.role === 'user') {
      writer.prompt(`<｜User｜>${turn.content}`);
    } else {
      writer.prompt('<｜Assistant｜>');
      const answer = turn.content.includes('</think>') ? splitReasoning(turn.content).answer : turn.content;
      writer.response(`${answer}<｜end▁of▁sentence｜>`, index, trainable(conversation, index));
    }
  });
  if (context.addGenerationPrompt) writer.prompt('<｜Assistant｜><think>\n');
}
