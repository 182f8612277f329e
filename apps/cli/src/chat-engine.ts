/**
 * One loaded model answering chat messages through its template, one request at a time (the
 * device runs one generation at a time; callers queue). Shared by `chat` and `serve`.
 */
import type { ChatTemplate, PromptEncoder } from '@webtune/data';
import { type FinishReason, generate } from '@webtune/nn';
import type { LoadedModel } from './model-loading.js';
import { type ChatMessage, chatPromptIds, MessagesError } from './prompting.js';

export interface CompletionOptions {
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Extra texts that end the answer. */
  stop?: readonly string[];
  /** Streams text as it becomes certain. */
  onText?: (text: string) => void;
  signal?: AbortSignal;
  /** Run the base model (adapter switched off) instead of the tuned one. */
  base?: boolean;
  /** Lower maxNewTokens to what the context leaves after the prompt instead of refusing. */
  fitContext?: boolean;
}

export interface Completion {
  text: string;
  promptTokens: number;
  completionTokens: number;
  /** OpenAI's finish reasons: stop (a stop token or text) or length (max tokens reached). */
  finishReason: 'stop' | 'length';
}

/** Thrown when a prompt does not fit the model's context (the server answers 400). */
export class ContextLengthError extends MessagesError {
  override name = 'ContextLengthError';
}

export class ChatEngine {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(
    readonly loaded: LoadedModel,
    readonly prompts: PromptEncoder,
  ) {}

  /** The chat template the prompts go through. */
  get template(): ChatTemplate {
    return this.prompts.template;
  }

  /** Requests waiting for the device (not counting the one running). */
  get queued(): number {
    return this.waiting;
  }

  /** Longest prompt + completion in tokens. */
  get contextLength(): number {
    return this.loaded.model.config.maxPositionEmbeddings;
  }

  /** Prompt ids for messages (throws MessagesError / ContextLengthError for bad input). */
  promptIds(messages: readonly ChatMessage[], maxNewTokens: number, fitContext = false): number[] {
    const ids = chatPromptIds(this.prompts, messages);
    if (ids.length + (fitContext ? 1 : maxNewTokens) > this.contextLength) {
      throw new ContextLengthError(
        `the prompt has ${ids.length} tokens and max_tokens is ${maxNewTokens}: more than the model's context of ${this.contextLength}`,
      );
    }
    return ids;
  }

  /**
   * Answers `messages`. Runs after every earlier call has finished: concurrent callers are
   * queued in arrival order and never share the device.
   */
  complete(messages: readonly ChatMessage[], options: CompletionOptions): Promise<Completion> {
    const ids = this.promptIds(messages, options.maxNewTokens, options.fitContext);
    if (options.fitContext) {
      options = { ...options, maxNewTokens: Math.min(options.maxNewTokens, this.contextLength - ids.length) };
    }
    this.waiting++;
    const run = this.tail.then(
      () => {
        this.waiting--;
        return this.run(ids, options);
      },
      () => {
        this.waiting--;
        return this.run(ids, options);
      },
    );
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async run(ids: number[], options: CompletionOptions): Promise<Completion> {
    if (options.signal?.aborted) {
      return { text: '', promptTokens: ids.length, completionTokens: 0, finishReason: 'stop' };
    }
    const { model, tokenizer, peft } = this.loaded;
    const call = () =>
      generate(model, tokenizer, ids, {
        maxNewTokens: options.maxNewTokens,
        temperature: options.temperature,
        topP: options.topP,
        topK: options.topK,
        repetitionPenalty: options.repetitionPenalty,
        seed: options.seed,
        stopTokens: [...new Set([...model.config.eosTokenIds, ...this.prompts.stopTokenIds()])],
        stopStrings: [...this.prompts.stopStrings(), ...(options.stop ?? [])],
        signal: options.signal,
        onToken: options.onText
          ? (event) => {
              if (event.text) options.onText?.(event.text);
            }
          : undefined,
      });
    const [result] = options.base && peft ? await peft.withAdaptersDisabled(call) : await call();
    return {
      text: result.text,
      promptTokens: ids.length,
      completionTokens: result.tokens.length,
      finishReason: finishReasonOf(result.finishReason),
    };
  }
}

function finishReasonOf(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}
