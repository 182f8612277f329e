/**
 * Predict runs: generate an answer for every prompt of a test set, keep prompt / predict / label
 * rows (LLaMA-Factory's `generated_predictions.jsonl` keys), and score them with BLEU-4 and
 * ROUGE-1/2/L.
 */
import type { Conversation, SupervisedExample } from '@webtune/data';
import { type CausalLM, type GenerateOptions, generate } from '@webtune/nn';
import { noGrad } from '@webtune/tensors';
import { EvaluationError } from '../errors.js';
import {
  type GenerationMetricOptions,
  type GenerationMetrics,
  generationMetrics,
} from '../metrics/generation-metrics.js';
import {
  asConversation,
  type EvalTokenizer,
  type PromptOptions,
  promptEncoderFor,
} from '../prompt-encoding.js';

/** One test example: a prompt (text or a conversation ending with a user turn) and the reference answer. */
export interface PredictExample {
  prompt: string | Conversation;
  label: string;
}

/** One line of a predictions file. */
export interface PredictionRecord {
  /** The rendered prompt text. */
  prompt: string;
  predict: string;
  label: string;
}

/** Options of `predict`. Sampling options default to greedy decoding. */
export interface PredictOptions extends PromptOptions, Omit<GenerateOptions, 'onToken' | 'addSpecialTokens'> {
  /** Prompts generated together (left-padded into one batch). Default 8. */
  batchSize?: number;
  /** How BLEU and ROUGE segment the texts. */
  metrics?: GenerationMetricOptions;
  /** Called after each batch. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** Records, their scores and the speed. */
export interface PredictResult {
  records: PredictionRecord[];
  metrics: GenerationMetrics;
  timing: { seconds: number; samplesPerSecond: number; newTokens: number; tokensPerSecond: number };
}

/**
 * Generates an answer for each example with `model` (greedy unless sampling options say
 * otherwise; stops at EOS, a stop string or `maxNewTokens`, default 128) and scores the answers.
 */
export async function predict(
  model: CausalLM,
  tokenizer: EvalTokenizer,
  examples: readonly PredictExample[],
  options: PredictOptions = {},
): Promise<PredictResult> {
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new EvaluationError(`batchSize must be a positive integer, got ${batchSize}`);
  const encoder = promptEncoderFor(tokenizer, options);
  const conversations = examples.map((example) => asConversation(example.prompt));
  const prompts = conversations.map((conversation) => encoder.renderPrompt(conversation));
  const {
    batchSize: _batch,
    metrics: metricOptions,
    onProgress,
    prompts: _prompts,
    template: _template,
    enableThinking: _thinking,
    ...generation
  } = options;
  const records: PredictionRecord[] = [];
  let newTokens = 0;
  const started = performance.now();
  for (let start = 0; start < examples.length; start += batchSize) {
    const texts = prompts.slice(start, start + batchSize);
    const results = await noGrad(() =>
      generate(
        model,
        tokenizer,
        conversations
          .slice(start, start + batchSize)
          .map((conversation) => encoder.encodePrompt(conversation)),
        { maxNewTokens: 128, ...generation },
      ),
    );
    results.forEach((result, offset) => {
      newTokens += result.tokens.length;
      records.push({ prompt: texts[offset], predict: result.text, label: examples[start + offset].label });
    });
    onProgress?.({ done: records.length, total: examples.length });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    records,
    metrics: generationMetrics(records, metricOptions),
    timing: {
      seconds,
      samplesPerSecond: seconds > 0 ? records.length / seconds : 0,
      newTokens,
      tokensPerSecond: seconds > 0 ? newTokens / seconds : 0,
    },
  };
}

/**
 * Test examples from supervised examples (`loadExamples` of @webtune/data with stage `sft`): the
 * conversation up to the last assistant turn is the prompt, that turn's text the label.
 */
export function predictExamplesFrom(examples: readonly SupervisedExample[]): PredictExample[] {
  return examples.map((example) => {
    const turns = example.conversation.turns;
    const last = turns[turns.length - 1];
    if (last?.role !== 'assistant') {
      throw new EvaluationError('a predict example must end with an assistant turn (the reference answer)', {
        file: example.location.file,
        line: example.location.line,
      });
    }
    return { prompt: { ...example.conversation, turns: turns.slice(0, -1) }, label: last.content };
  });
}

/** Records as JSON Lines text, one `{"prompt","predict","label"}` object a line. */
export function predictionsToJsonl(records: readonly PredictionRecord[]): string {
  return (
    records
      .map((record) =>
        JSON.stringify({ prompt: record.prompt, predict: record.predict, label: record.label }),
      )
      .join('\n') + (records.length > 0 ? '\n' : '')
  );
}

/** Parses a predictions file (LLaMA-Factory's `generated_predictions.jsonl` too); errors name the line. */
export function parsePredictionsJsonl(
  text: string,
  file = 'generated_predictions.jsonl',
): PredictionRecord[] {
  const records: PredictionRecord[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim().length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new EvaluationError(`not valid JSON: ${(error as Error).message}`, { file, line: index + 1 });
    }
    const row = value as Record<string, unknown>;
    if (
      row === null ||
      typeof row !== 'object' ||
      typeof row.predict !== 'string' ||
      typeof row.label !== 'string'
    ) {
      throw new EvaluationError('expected an object with string fields "predict" and "label"', {
        file,
        line: index + 1,
      });
    }
    records.push({
      prompt: typeof row.prompt === 'string' ? row.prompt : '',
      predict: row.predict,
      label: row.label,
    });
  });
  return records;
}
