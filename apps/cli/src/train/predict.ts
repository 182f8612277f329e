/**
 * `do_predict`: the model's answers to eval_dataset's prompts, before and after training, and how
 * many equal the reference answer. The CLI uses it to show what a run changed.
 */
import type { DatasetSource } from '@webtune/data';
import { loadExamplesFromDirectory } from '@webtune/data/node';
import type { ChatEngine, CompletionOptions } from '../chat-engine.js';
import type { ChatMessage } from '../prompting.js';

export interface PredictionCase {
  messages: ChatMessage[];
  label: string;
}

export interface Predictions {
  answers: string[];
  correct: number;
}

/** The SFT rows of `datasets` as prompts (every turn but the last answer) and reference answers. */
export async function predictionCases(options: {
  datasetDir: string;
  datasets: (string | DatasetSource)[];
  maxSamples?: number;
}): Promise<PredictionCase[]> {
  const loaded = await loadExamplesFromDirectory({
    datasetDir: options.datasetDir,
    datasets: options.datasets,
    stage: 'sft',
    maxSamples: options.maxSamples,
  });
  const cases: PredictionCase[] = [];
  for (const example of [...loaded.train, ...loaded.validation]) {
    if (example.kind !== 'supervised') continue;
    const { turns, system } = example.conversation;
    const last = turns[turns.length - 1];
    const messages: ChatMessage[] = [];
    if (system) messages.push({ role: 'system', content: system });
    for (const turn of turns.slice(0, -1)) {
      if (turn.role !== 'user' && turn.role !== 'assistant') break;
      messages.push({ role: turn.role, content: turn.content });
    }
    if (messages.length > 0 && messages[messages.length - 1].role === 'user')
      cases.push({ messages, label: last.content });
  }
  return cases;
}

/** Whether an answer equals the reference (surrounding whitespace aside). */
export function isMatch(answer: string, label: string): boolean {
  return answer.trim() === label.trim();
}

/** Answers every case (one at a time, through the engine's queue) and counts exact matches. */
export async function predict(
  engine: ChatEngine,
  cases: readonly PredictionCase[],
  options: Omit<CompletionOptions, 'onText'>,
  onProgress?: (done: number, total: number) => void,
): Promise<Predictions> {
  const answers: string[] = [];
  let correct = 0;
  for (const [index, item] of cases.entries()) {
    const completion = await engine.complete(item.messages, options);
    answers.push(completion.text);
    if (isMatch(completion.text, item.label)) correct++;
    onProgress?.(index + 1, cases.length);
  }
  return { answers, correct };
}
