/**
 * The canonical form every dataset format is converted into. Templates and tokenization only ever see
 * these types, so a new file format needs only a converter.
 */
import type { RowLocation } from '../issues.js';

/**
 * Role of a turn. `user` and `observation` (a tool result) are the prompt side; `assistant` and
 * `function_call` (a tool call made by the assistant) are the response side.
 */
export type TurnRole = 'user' | 'assistant' | 'observation' | 'function_call';

/** A call of one tool, as the assistant writes it. */
export interface ToolCall {
  name: string;
  /** The arguments, usually an object. */
  arguments: unknown;
}

/** One turn of a conversation. */
export interface Turn {
  role: TurnRole;
  /** The text. For `function_call` turns, the calls as JSON text (as in ShareGPT files). */
  content: string;
  /** Parsed calls of a `function_call` turn. */
  toolCalls?: ToolCall[];
  /** LLaMA-Factory v1 `loss_weight` of an assistant turn; 0 means the turn is not trained. */
  lossWeight?: number;
}

/** A tool the assistant may call, in the OpenAI / Hugging Face shape. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: unknown; [key: string]: unknown };
}

/**
 * A conversation: turns alternate prompt side (user, observation) and response side (assistant,
 * function_call), starting on the prompt side.
 */
export interface Conversation {
  system?: string;
  tools?: ToolDefinition[];
  turns: Turn[];
}

/** A supervised fine-tuning example: the conversation ends with a response-side turn. */
export interface SupervisedExample {
  kind: 'supervised';
  location: RowLocation;
  conversation: Conversation;
}

/** A preference pair: the conversation ends with a prompt-side turn; `chosen` and `rejected` answer it. */
export interface PreferenceExample {
  kind: 'preference';
  location: RowLocation;
  conversation: Conversation;
  chosen: Turn;
  rejected: Turn;
}

/** A KTO example: a supervised conversation labelled desirable (true) or undesirable (false). */
export interface KtoExample {
  kind: 'kto';
  location: RowLocation;
  conversation: Conversation;
  desirable: boolean;
}

/** A pretraining document. */
export interface PretrainExample {
  kind: 'pretrain';
  location: RowLocation;
  text: string;
}

export type Example = SupervisedExample | PreferenceExample | KtoExample | PretrainExample;

/**
 * Training stage, with LLaMA-Factory's names: `pt` pretraining, `sft` supervised fine-tuning, `rm`
 * reward modelling and `dpo` preference optimisation (both need preference pairs), `kto`.
 */
export type Stage = 'pt' | 'sft' | 'rm' | 'dpo' | 'kto';

/** The example kind each stage trains on. */
export const EXAMPLE_KIND_OF_STAGE: Record<Stage, Example['kind']> = {
  pt: 'pretrain',
  sft: 'supervised',
  rm: 'preference',
  dpo: 'preference',
  kto: 'kto',
};

/** Whether a role is on the prompt side of a conversation. */
export function isPromptSide(role: TurnRole): boolean {
  return role === 'user' || role === 'observation';
}
