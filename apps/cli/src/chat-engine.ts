/**
 * One loaded model answering chat messages through its template. The device runs one generation
 * at a time; requests that arrive meanwhile wait in a queue, and when the device frees up the
 * waiting requests with the same sampling settings decode together as one batch (up to
 * `maxBatch` rows), each with its own max tokens, stop texts, seed, stream and abort signal, so
 * each gets the answer it would get alone. Shared by `chat` and `serve`.
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

interface Waiting {
  ids: number[];
  options: CompletionOptions;
  resolve: (completion: Completion) => void;
  reject: (error: unknown) => void;
}

export class ChatEngine {
  private readonly waiting: Waiting[] = [];
  private running = false;
  /** The most requests one generation has decoded together so far. */
  largestBatch = 0;

  constructor(
    readonly loaded: LoadedModel,
    readonly prompts: PromptEncoder,
    /** Most requests decoded together. */
    readonly maxBatch = 8,
  ) {}

  /** The chat template the prompts go through. */
  get template(): ChatTemplate {
    return this.prompts.template;
  }

  /** Requests waiting for the device (not counting the one running). */
  get queued(): number {
    return this.waiting.length;
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
   * Answers `messages`. Runs once the device is free: concurrent callers are queued in arrival
   * order, and those waiting with the same sampling settings run together in one batch.
   */
  complete(messages: readonly ChatMessage[], options: CompletionOptions): Promise<Completion> {
    const ids = this.promptIds(messages, options.maxNewTokens, options.fitContext);
    if (options.fitContext) {
      options = { ...options, maxNewTokens: Math.min(options.maxNewTokens, this.contextLength - ids.length) };
    }
    return new Promise<Completion>((resolve, reject) => {
      this.waiting.push({ ids, options, resolve, reject });
      void this.drain();
    });
  }

  /** Runs the queue until it is empty: each turn takes the first request and every compatible one behind it. */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const first = this.waiting.shift() as Waiting;
        const key = batchKey(first.options);
        const batch = [first];
        for (let i = 0; i < this.waiting.length && batch.length < this.maxBatch; ) {
          if (batchKey(this.waiting[i].options) === key) batch.push(...this.waiting.splice(i, 1));
          else i++;
        }
        try {
          const completions = await this.run(batch);
          for (const [i, request] of batch.entries()) request.resolve(completions[i]);
        } catch (error) {
          for (const request of batch) request.reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async run(batch: readonly Waiting[]): Promise<Completion[]> {
    const completions: Completion[] = batch.map(({ ids }) => ({
      text: '',
      promptTokens: ids.length,
      completionTokens: 0,
      finishReason: 'stop',
    }));
    // Requests aborted while they waited, or asking for no tokens, get an empty answer without running.
    batch.forEach((request, i) => {
      if (request.options.maxNewTokens < 1) completions[i].finishReason = 'length';
    });
    const live = batch.flatMap((request, i) =>
      request.options.signal?.aborted || request.options.maxNewTokens < 1 ? [] : [i],
    );
    if (live.length === 0) return completions;
    this.largestBatch = Math.max(this.largestBatch, live.length);
    const { model, tokenizer, peft } = this.loaded;
    const options = batch[live[0]].options;
    const call = () =>
      generate(
        model,
        tokenizer,
        live.map((i) => batch[i].ids),
        {
          temperature: options.temperature,
          topP: options.topP,
          topK: options.topK,
          repetitionPenalty: options.repetitionPenalty,
          stopTokens: [...new Set([...model.config.eosTokenIds, ...this.prompts.stopTokenIds()])],
          stopStrings: this.prompts.stopStrings(),
          rows: live.map((i) => {
            const own = batch[i].options;
            return {
              maxNewTokens: own.maxNewTokens,
              stopStrings: own.stop ?? [],
              seed: own.seed,
              signal: own.signal,
            };
          }),
          onToken: (event) => {
            if (event.text) batch[live[event.prompt]].options.onText?.(event.text);
          },
        },
      );
    const results = options.base && peft ? await peft.withAdaptersDisabled(call) : await call();
    results.forEach((result, row) => {
      completions[live[row]] = {
        text: result.text,
        promptTokens: result.promptTokens.length,
        completionTokens: result.tokens.length,
        finishReason: finishReasonOf(result.finishReason),
      };
    });
    return completions;
  }
}

/** Requests with equal keys can share one batch: the settings every row of a generation shares. */
function batchKey(options: CompletionOptions): string {
  const { temperature, topP, topK, repetitionPenalty, base } = options;
  return JSON.stringify([temperature ?? null, topP ?? null, topK ?? null, repetitionPenalty ?? null, !!base]);
}

function finishReasonOf(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}
