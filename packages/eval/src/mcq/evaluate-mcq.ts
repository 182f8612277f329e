/**
 * Scoring a multiple-choice task: prompts built and tokenized for every question, sorted by length
 * and packed into batches (many questions per forward pass), the answer read as the largest of the
 * A/B/C/D logits, accuracy gathered per subject, category and overall.
 */
import type { Conversation, TokenizerLike } from '@webtune/data';
import type { CausalLM } from '@webtune/nn';
import { EvaluationError } from '../errors.js';
import { type EvalTokenizer, type PromptOptions, promptEncoderFor } from '../prompt-encoding.js';
import { type ChoiceScorer, modelChoiceScorer } from './choice-scorer.js';
import { aggregateMcq, type McqQuestionResult, type McqResult } from './mcq-result.js';
import { mcqConversation } from './prompt.js';
import { CHOICE_LETTERS, type McqLanguage, type McqQuestion, type McqTask } from './task.js';

/** Options of `evaluateMcq`. */
export interface McqOptions extends PromptOptions {
  /** Solved dev examples before each question. Default 5. */
  nShot?: number;
  /** Header language. Default: the task's (zh for C-Eval / CMMLU, en otherwise). */
  language?: McqLanguage;
  /** Longest prompt in tokens. Default: the scorer's `maxLength` (max_position_embeddings). */
  maxLength?: number;
  /** Most prompt tokens (padding included) in one forward pass. Default 4096. */
  maxBatchTokens?: number;
  /** Most questions in one forward pass. Default 32. */
  maxBatchSize?: number;
  /** Score only the first N questions of each subject (quick runs). */
  limit?: number;
  /** Token ids of the four answers. Default: the last token of each letter encoded alone. */
  choiceTokenIds?: readonly [number, number, number, number];
  /** Called after each batch. */
  onProgress?: (progress: McqProgress) => void;
  signal?: AbortSignal;
}

/** Progress of a run. */
export interface McqProgress {
  done: number;
  total: number;
  elapsedSeconds: number;
}

interface PreparedQuestion {
  subject: number;
  index: number;
  question: McqQuestion;
  ids: number[];
  shots: number;
  clipped: boolean;
}

/**
 * Evaluates a model (a CausalLM, or any `ChoiceScorer`) on a task split. Throws `EvaluationError` when
 * the split has no answers (C-Eval's test split), when few-shot examples are asked for a subject
 * without a dev file, or when the letters do not tokenize to four distinct tokens.
 */
export async function evaluateMcq(
  model: CausalLM | ChoiceScorer,
  tokenizer: EvalTokenizer,
  task: McqTask,
  options: McqOptions = {},
): Promise<McqResult> {
  const scorer = 'scoreNextTokens' in model ? model : modelChoiceScorer(model);
  const nShot = options.nShot ?? 5;
  if (!Number.isInteger(nShot) || nShot < 0)
    throw new EvaluationError(`nShot must be an integer >= 0, got ${nShot}`);
  const language = options.language ?? task.language;
  const prompts = promptEncoderFor(tokenizer, options);
  const maxLength = options.maxLength ?? scorer.maxLength ?? Number.POSITIVE_INFINITY;
  const maxBatchTokens = options.maxBatchTokens ?? 4096;
  const maxBatchSize = options.maxBatchSize ?? 32;
  if (!(maxLength >= 2)) throw new EvaluationError(`maxLength must be at least 2, got ${maxLength}`);
  if (!(maxBatchTokens >= 1) || !(maxBatchSize >= 1)) {
    throw new EvaluationError(
      `maxBatchTokens and maxBatchSize must be positive (${maxBatchTokens}, ${maxBatchSize})`,
    );
  }
  const choiceIds = options.choiceTokenIds ?? letterTokenIds(tokenizer);
  const encode = (conversation: Conversation) => prompts.encodePrompt(conversation);

  // Build and tokenize every prompt, with as many shots as fit in maxLength.
  const prepared: PreparedQuestion[] = [];
  task.subjects.forEach((subject, subjectIndex) => {
    const questions =
      options.limit !== undefined ? subject.questions.slice(0, options.limit) : subject.questions;
    if (nShot > 0 && subject.dev.length === 0) {
      throw new EvaluationError(
        `subject "${subject.key}" has no dev examples for ${nShot}-shot prompts; add dev/${subject.key}_dev.csv or use nShot 0`,
      );
    }
    questions.forEach((question, index) => {
      if (question.answer === null) {
        throw new EvaluationError(
          `the ${task.split} split has no answer column${task.format === 'ceval' ? " (C-Eval's test answers are not public: evaluate the val split)" : ''}`,
          question,
        );
      }
      const pool = subject.dev.filter((example) => example !== question);
      let shots = Math.min(nShot, pool.length);
      let ids = encode(mcqConversation(question, pool.slice(0, shots), subject.name, language));
      while (ids.length > maxLength && shots > 0) {
        shots--;
        ids = encode(mcqConversation(question, pool.slice(0, shots), subject.name, language));
      }
      // Still too long with no examples: keep the end (the question and the cue), and BOS.
      const clipped = ids.length > maxLength;
      if (clipped) {
        const keepBos = tokenizer.bosTokenId != null && ids[0] === tokenizer.bosTokenId;
        ids = keepBos
          ? [ids[0], ...ids.slice(ids.length - maxLength + 1)]
          : ids.slice(ids.length - maxLength);
      }
      prepared.push({ subject: subjectIndex, index, question, ids, shots, clipped });
    });
  });

  // Longest first, packed under the token budget: little padding, many questions per pass.
  const order = prepared.map((_, i) => i).sort((a, b) => prepared[b].ids.length - prepared[a].ids.length);
  const batches: number[][] = [];
  for (const item of order) {
    const current = batches[batches.length - 1];
    const width = current ? prepared[current[0]].ids.length : 0;
    if (current && current.length < maxBatchSize && (current.length + 1) * width <= maxBatchTokens)
      current.push(item);
    else batches.push([item]);
  }

  const logits: Float32Array[] = new Array(prepared.length);
  const started = performance.now();
  let done = 0;
  for (const batch of batches) {
    if (options.signal?.aborted) throw new EvaluationError('evaluation aborted');
    const scores = await scorer.scoreNextTokens(
      batch.map((item) => prepared[item].ids),
      choiceIds,
    );
    if (scores.length !== batch.length) {
      throw new EvaluationError(`the scorer returned ${scores.length} rows for ${batch.length} prompts`);
    }
    batch.forEach((item, row) => {
      logits[item] = scores[row];
    });
    done += batch.length;
    options.onProgress?.({
      done,
      total: prepared.length,
      elapsedSeconds: (performance.now() - started) / 1000,
    });
  }
  const seconds = (performance.now() - started) / 1000;

  const questions: McqQuestionResult[] = prepared.map((item, i) => {
    const values = [...logits[i]];
    const prediction = CHOICE_LETTERS[argmax(values)];
    const subject = task.subjects[item.subject];
    return {
      subject: subject.key,
      index: item.index,
      file: item.question.file,
      line: item.question.line,
      answer: item.question.answer!,
      prediction,
      correct: prediction === item.question.answer,
      logits: values,
      probabilities: softmax(values),
      shots: item.shots,
      promptTokens: item.ids.length,
      clipped: item.clipped,
    };
  });
  const promptTokens = prepared.reduce((total, item) => total + item.ids.length, 0);
  return aggregateMcq(task, questions, {
    nShot,
    language,
    template: prompts.template.name,
    timing: {
      seconds,
      forwardPasses: batches.length,
      promptTokens,
      questionsPerSecond: seconds > 0 ? prepared.length / seconds : 0,
      tokensPerSecond: seconds > 0 ? promptTokens / seconds : 0,
    },
  });
}

/** Token ids of A, B, C, D: the last token of each letter encoded alone (as LLaMA-Factory does). */
export function letterTokenIds(tokenizer: Pick<TokenizerLike, 'encode'>): [number, number, number, number] {
  const ids = CHOICE_LETTERS.map((letter) => {
    const encoded = tokenizer.encode(letter, { addSpecialTokens: false });
    if (encoded.length === 0) throw new EvaluationError(`the letter ${letter} encodes to no token`);
    return encoded[encoded.length - 1];
  });
  if (new Set(ids).size !== 4) {
    throw new EvaluationError(
      `the letters A-D do not encode to four distinct tokens (${ids.join(', ')}); pass choiceTokenIds`,
    );
  }
  return ids as [number, number, number, number];
}

/** Index of the largest value (the first on ties). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Softmax of a few logits, in float64. */
export function softmax(values: readonly number[]): number[] {
  const top = Math.max(...values);
  const exps = values.map((value) => Math.exp(value - top));
  const sum = exps.reduce((total, value) => total + value, 0);
  return exps.map((value) => value / sum);
}
