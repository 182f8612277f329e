import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EvaluationError } from '../errors.js';
import { loadMcqTaskDirectory } from '../node.js';
import { characterTokenizer, FIXTURES } from '../testing/fakes.js';
import type { ChoiceScorer } from './choice-scorer.js';
import { evaluateMcq, letterTokenIds } from './evaluate-mcq.js';
import { formatMcqMarkdown, mcqResultToJson } from './mcq-result.js';
import type { McqTask } from './task.js';

const TINY = join(FIXTURES, 'tiny-task');
const tokenizer = characterTokenizer();
const LETTER_IDS = letterTokenIds(tokenizer);

/** A scorer that records what it is given and answers with `pick(promptText)` (a letter index). */
function stubScorer(pick: (prompt: string) => number, maxLength?: number) {
  const calls: { prompts: string[]; candidates: number[] }[] = [];
  const scorer: ChoiceScorer = {
    maxLength,
    async scoreNextTokens(prompts, candidates) {
      calls.push({ prompts: prompts.map((ids) => tokenizer.decode([...ids])), candidates: [...candidates] });
      return prompts.map((ids) => {
        const logits = new Float32Array(candidates.length).fill(-1);
        logits[pick(tokenizer.decode([...ids]))] = 2;
        return logits;
      });
    },
  };
  return { scorer, calls };
}

/** The right letter of the last question in a prompt, looked up in the task. */
function oracle(task: McqTask) {
  const answers = new Map<string, number>();
  for (const subject of task.subjects) {
    for (const question of subject.questions)
      answers.set(question.question, 'ABCD'.indexOf(question.answer!));
  }
  return (prompt: string) => {
    for (const [question, answer] of answers)
      if (prompt.includes(`${question}\nA.`) && prompt.endsWith('Answer:')) {
        const last = prompt.lastIndexOf(`${question}\nA.`);
        if (!prompt.slice(last).includes('\n\n')) return answer;
      }
    throw new Error(`no question found at the end of ${JSON.stringify(prompt.slice(-80))}`);
  };
}

describe('evaluateMcq (choice logic on a stub scorer)', () => {
  it('scores 100% when the right letter has the largest logit, with the counts per subject and category', async () => {
    const task = await loadMcqTaskDirectory(TINY);
    const { scorer, calls } = stubScorer(oracle(task));
    const result = await evaluateMcq(scorer, tokenizer, task, { nShot: 1 });
    expect(result.overall).toEqual({ questions: 9, correct: 9, accuracy: 1, subjectAverage: 1 });
    expect(result.subjects.map((subject) => [subject.key, subject.questions, subject.correct])).toEqual([
      ['arithmetic', 4, 4],
      ['colours', 3, 3],
      ['stories', 2, 2],
    ]);
    expect(calls.every((call) => call.candidates.join() === LETTER_IDS.join())).toBe(true);
    const expected = Math.exp(3) / (Math.exp(3) + 3);
    for (const question of result.questions)
      expect(Math.max(...question.probabilities)).toBeCloseTo(expected, 6);
  });

  it('counts a constant answer right only where it is the key (B: 1 of 4, 1 of 3, 1 of 2)', async () => {
    const task = await loadMcqTaskDirectory(TINY);
    const result = await evaluateMcq(stubScorer(() => 1).scorer, tokenizer, task, { nShot: 0 });
    expect(result.subjects.map((subject) => subject.correct)).toEqual([1, 1, 1]);
    expect(result.categories).toEqual([
      { category: 'STEM', subjects: 1, questions: 4, correct: 1, accuracy: 0.25 },
      { category: 'Humanities', subjects: 1, questions: 2, correct: 1, accuracy: 0.5 },
      { category: 'Other', subjects: 1, questions: 3, correct: 1, accuracy: 1 / 3 },
    ]);
    expect(result.overall.accuracy).toBeCloseTo(3 / 9, 12);
    expect(result.overall.subjectAverage).toBeCloseTo((0.25 + 1 / 3 + 0.5) / 3, 12);
    expect(result.questions.every((question) => question.prediction === 'B')).toBe(true);
    const markdown = formatMcqMarkdown(result);
    expect(markdown).toContain('| STEM | 1 | 4 | 25.00 |');
    expect(markdown).toContain('| **Average** | 3 | 9 | **33.33** |');
    expect(markdown).toContain('| short stories (`stories`) | Humanities | 2 | 1 | 50.00 |');
    const json = JSON.parse(mcqResultToJson(result));
    expect(json.overall.correct).toBe(3);
    expect(json.questions).toHaveLength(9);
    expect(JSON.parse(mcqResultToJson(result, { questions: false })).questions).toBeUndefined();
  });

  it('picks the first of equal logits and a wrong answer when the largest logit is elsewhere', async () => {
    const task = await loadMcqTaskDirectory(TINY, { subjects: ['colours'] });
    const ties: ChoiceScorer = {
      scoreNextTokens: async (prompts) => prompts.map(() => new Float32Array([3, 3, 3, 3])),
    };
    const result = await evaluateMcq(ties, tokenizer, task, { nShot: 0 });
    expect(result.questions.map((question) => question.prediction)).toEqual(['A', 'A', 'A']);
    expect(result.questions.map((question) => question.correct)).toEqual([true, false, false]);
    expect(result.questions[0].probabilities).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('builds LLaMA-Factory prompts: header, n solved dev examples, the question ending in the cue', async () => {
    const task = await loadMcqTaskDirectory(TINY, { subjects: ['arithmetic'] });
    const { scorer, calls } = stubScorer(() => 0);
    await evaluateMcq(scorer, tokenizer, task, { nShot: 2, limit: 1, template: 'fewshot' });
    expect(calls[0].prompts).toEqual([
      'The following are multiple choice questions (with answers) about arithmetic.\n\n' +
        'What is 1 + 1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:B\n\n' +
        'What is 2 + 2?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer:A\n\n' +
        'What is 3 + 3?\nA. 5\nB. 6\nC. 7\nD. 8\nAnswer:',
    ]);
    await evaluateMcq(scorer, tokenizer, task, { nShot: 0, limit: 1, language: 'zh', template: 'chatml' });
    expect(calls[1].prompts[0]).toBe(
      '<|im_start|>user\n以下是中国关于arithmetic考试的单项选择题，请选出其中的正确答案。\n\n' +
        'What is 3 + 3?\nA. 5\nB. 6\nC. 7\nD. 8\n答案：<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('writes BOS only where the template does, and drops examples to fit maxLength', async () => {
    const task = await loadMcqTaskDirectory(TINY, { subjects: ['arithmetic'] });
    const withBos = characterTokenizer({ bos: true });
    const seen: number[][] = [];
    const scorer: ChoiceScorer = {
      maxLength: 150,
      scoreNextTokens: async (prompts) => {
        seen.push(...prompts.map((ids) => [...ids]));
        return prompts.map(() => new Float32Array([0, 1, 0, 0]));
      },
    };
    const result = await evaluateMcq(scorer, withBos, task, { nShot: 2, template: 'fewshot' });
    // LLaMA-Factory's fewshot template has no BOS.
    expect(seen.every((ids) => ids[0] !== 1)).toBe(true);
    expect(seen.every((ids) => ids.length <= 150)).toBe(true);
    // Header (78) + one example (45) + a question (42 or more) exceeds 150: no example fits; the
    // two-line question (78 + 73 = 151) does not fit even alone and is cut at the front.
    expect(result.questions.map((question) => [question.shots, question.clipped])).toEqual([
      [0, false],
      [0, false],
      [0, true],
      [0, false],
    ]);
    expect(result.shortened).toEqual({ fewerShots: 4, clipped: 1 });
    const clipped = await evaluateMcq(scorer, withBos, task, {
      nShot: 0,
      maxLength: 20,
      template: 'fewshot',
    });
    expect(clipped.shortened.clipped).toBe(4);
    expect(seen.slice(-4).every((ids) => ids.length === 20 && withBos.decode(ids).endsWith('Answer:'))).toBe(
      true,
    );
  });

  it('packs questions into batches under the token budget, longest first', async () => {
    const task = await loadMcqTaskDirectory(TINY);
    const { scorer, calls } = stubScorer(() => 0);
    const result = await evaluateMcq(scorer, tokenizer, task, {
      nShot: 0,
      maxBatchSize: 4,
      maxBatchTokens: 100_000,
    });
    expect(calls.map((call) => call.prompts.length)).toEqual([4, 4, 1]);
    expect(result.timing.forwardPasses).toBe(3);
    const lengths = calls.flatMap((call) => call.prompts.map((prompt) => prompt.length));
    expect(lengths).toEqual([...lengths].sort((a, b) => b - a));
    const tight = stubScorer(() => 0);
    await evaluateMcq(tight.scorer, tokenizer, task, { nShot: 0, maxBatchTokens: 300 });
    for (const call of tight.calls)
      expect(call.prompts.length * call.prompts[0].length).toBeLessThanOrEqual(300);
  });

  it('refuses a split without answers and few-shot prompts without dev examples', async () => {
    const task = await loadMcqTaskDirectory(TINY);
    const unanswered: McqTask = {
      ...task,
      format: 'ceval',
      subjects: [
        { ...task.subjects[0], questions: task.subjects[0].questions.map((q) => ({ ...q, answer: null })) },
      ],
    };
    await expect(
      evaluateMcq(stubScorer(() => 0).scorer, tokenizer, unanswered, { nShot: 0 }),
    ).rejects.toThrow(
      "test/arithmetic_test.csv:1: the test split has no answer column (C-Eval's test answers are not public: evaluate the val split)",
    );
    const noDev: McqTask = { ...task, subjects: [{ ...task.subjects[0], dev: [] }] };
    await expect(evaluateMcq(stubScorer(() => 0).scorer, tokenizer, noDev)).rejects.toThrow(EvaluationError);
    await expect(evaluateMcq(stubScorer(() => 0).scorer, tokenizer, noDev)).rejects.toThrow(/use nShot 0/);
  });
});
