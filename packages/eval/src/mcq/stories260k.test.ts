// The multiple-choice machinery end to end on a real model (stories260K, a story generator: near
// chance accuracy is expected; what is checked is the batching, the choice logic and the counts).
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { loadMcqTaskDirectory } from '../node.js';
import { FIXTURES } from '../testing/fakes.js';
import { STORIES, storiesModel } from '../testing/stories.js';
import { modelChoiceScorer } from './choice-scorer.js';
import { evaluateMcq, letterTokenIds } from './evaluate-mcq.js';
import type { McqResult } from './mcq-result.js';
import { CHOICE_LETTERS, type McqTask } from './task.js';

/** Subject and category counts add up to the overall ones, and each prediction is its argmax. */
function expectConsistent(result: McqResult, questions: number) {
  expect(result.overall.questions).toBe(questions);
  expect(result.questions).toHaveLength(questions);
  const sum = (items: { questions: number; correct: number }[], key: 'questions' | 'correct') =>
    items.reduce((total, item) => total + item[key], 0);
  expect(sum(result.subjects, 'questions')).toBe(questions);
  expect(sum(result.categories, 'questions')).toBe(questions);
  expect(sum(result.subjects, 'correct')).toBe(result.overall.correct);
  expect(sum(result.categories, 'correct')).toBe(result.overall.correct);
  expect(result.overall.accuracy).toBeCloseTo(result.overall.correct / questions, 12);
  for (const question of result.questions) {
    const best = question.logits.indexOf(Math.max(...question.logits));
    expect(question.prediction).toBe(CHOICE_LETTERS[best]);
    expect(question.correct).toBe(question.prediction === question.answer);
    expect(question.promptTokens).toBeLessThanOrEqual(512);
  }
  expect(result.timing.questionsPerSecond).toBeGreaterThan(0);
}

describe.skipIf(!requireFixtures(STORIES, 'eval/mmlu_subset', 'eval/ceval_subset', 'eval/cmmlu_subset'))(
  'multiple choice on stories260K',
  () => {
    const stories = storiesModel();

    /** Letter logits of one prompt alone: a forward over every position, the last row read whole. */
    async function unbatchedLetterLogits(ids: number[]): Promise<number[]> {
      const { model, tokenizer, device } = stories;
      const vocab = model.config.vocabSize;
      const row = await device.scope(async () => {
        const logits = model.forward(device.fromArray(ids, [1, ids.length], 'i32'));
        return (await logits.toArray()) as Float32Array;
      });
      const last = row.subarray((ids.length - 1) * vocab);
      return letterTokenIds(tokenizer).map((id) => last[id]);
    }

    it('scores a left-padded batch exactly as each prompt alone', async () => {
      const { model, tokenizer } = stories;
      const prompts = [
        'Once upon a time, there was a little girl. Answer:',
        'Tom liked his red ball. Answer:',
        'Lily went to the park with her mom and saw a big dog. She was happy. Answer:',
        'Answer:',
      ].map((text) => tokenizer.encode(text));
      const batched = await modelChoiceScorer(model).scoreNextTokens(prompts, letterTokenIds(tokenizer));
      for (const [index, ids] of prompts.entries()) {
        const alone = await unbatchedLetterLogits(ids);
        for (let letter = 0; letter < 4; letter++)
          expect(batched[index][letter]).toBeCloseTo(alone[letter], 4);
      }
    });

    it('reaches 100% on a task keyed to the model’s own unbatched choices, and 0% when shifted', async () => {
      const { model, tokenizer } = stories;
      const task = await loadMcqTaskDirectory(join(FIXTURES, 'tiny-task'));
      // Score each question alone (prompt as evaluateMcq builds it with nShot 0) to learn the model's pick.
      const probe = await evaluateMcq(model, tokenizer, task, { nShot: 0, maxBatchSize: 1 });
      const picks = probe.questions.map((question) => question.prediction);
      const keyed = (shift: number): McqTask => {
        let next = 0;
        return {
          ...task,
          subjects: task.subjects.map((subject) => ({
            ...subject,
            questions: subject.questions.map((question) => ({
              ...question,
              answer: CHOICE_LETTERS[(CHOICE_LETTERS.indexOf(picks[next++]) + shift) % 4],
            })),
          })),
        };
      };
      const right = await evaluateMcq(model, tokenizer, keyed(0), { nShot: 0, maxBatchSize: 9 });
      expect(right.timing.forwardPasses).toBe(1);
      expect(right.overall).toMatchObject({ questions: 9, correct: 9, accuracy: 1 });
      const wrong = await evaluateMcq(model, tokenizer, keyed(1), { nShot: 0, maxBatchSize: 9 });
      expect(wrong.overall).toMatchObject({ questions: 9, correct: 0, accuracy: 0 });
    });

    // Four questions per subject keep this under ~10 s on a software adapter; `pnpm bench` runs whole splits.
    it('runs MMLU (val), C-Eval (val) and CMMLU (test) 5-shot end to end', async () => {
      const { model, tokenizer } = stories;
      const runs: [string, 'val' | 'test', number, number, 'en' | 'zh'][] = [
        ['eval/mmlu_subset', 'val', 4, 20, 'en'],
        ['eval/ceval_subset', 'val', 4, 20, 'zh'],
        ['eval/cmmlu_subset', 'test', 4, 20, 'zh'],
      ];
      for (const [folder, split, limit, questions, language] of runs) {
        const task = await loadMcqTaskDirectory(fixturePath(folder), { split });
        const result = await evaluateMcq(model, tokenizer, task, { nShot: 5, limit });
        expectConsistent(result, questions);
        expect(result.language).toBe(language);
        expect(result.subjects).toHaveLength(5);
        expect(result.categories.length).toBeGreaterThanOrEqual(2);
        // Near chance for a story model; not every answer right.
        expect(result.overall.accuracy).toBeLessThan(0.7);
        // The context is 512 tokens: some prompts keep fewer than 5 examples.
        expect(result.shortened.fewerShots).toBeGreaterThan(0);
        console.log(
          `${folder} ${split}: ${questions} questions, ${(result.overall.accuracy * 100).toFixed(1)}% correct, ` +
            `${result.timing.questionsPerSecond.toFixed(1)} questions/s (${Math.round(result.timing.tokensPerSecond)} tokens/s, ` +
            `${result.timing.forwardPasses} forward passes)`,
        );
      }
    });
  },
);
