import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memoryFileResolver } from '@webtune/data';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { EvaluationError } from '../errors.js';
import { loadMcqTaskDirectory } from '../node.js';
import { loadMcqTask } from './task.js';

const TINY = join(dirname(fileURLToPath(import.meta.url)), '..', '__fixtures__', 'tiny-task');
const MAPPING = JSON.stringify({ algebra: { name: 'algebra', category: 'STEM' } });

function memoryTask(files: Record<string, string>) {
  return loadMcqTask(memoryFileResolver(files), 'memory-task', { split: 'test' });
}

describe('loadMcqTask', () => {
  it('reads subjects, names, categories, dev examples and a question spanning two lines', async () => {
    const task = await loadMcqTaskDirectory(TINY);
    expect(task.name).toBe('tiny-task');
    expect(task.format).toBe('mmlu');
    expect(task.language).toBe('en');
    expect(
      task.subjects.map((subject) => [
        subject.key,
        subject.name,
        subject.category,
        subject.questions.length,
        subject.dev.length,
      ]),
    ).toEqual([
      ['arithmetic', 'arithmetic', 'STEM', 4, 2],
      ['colours', 'colours', 'Other', 3, 1],
      ['stories', 'short stories', 'Humanities', 2, 1],
    ]);
    const [, , third, fourth] = task.subjects[0].questions;
    expect(third).toMatchObject({
      question: 'What is 9 - 4,\nwritten as a word?',
      choices: ['three', 'four', 'five', 'six'],
      answer: 'C',
      file: 'test/arithmetic_test.csv',
      line: 3,
    });
    expect(fourth.line).toBe(5);
    const val = await loadMcqTaskDirectory(TINY, { split: 'val', subjects: ['arithmetic'] });
    expect(val.subjects.map((subject) => subject.questions.length)).toEqual([1]);
  });

  describe.skipIf(!requireFixtures('eval/mmlu_subset', 'eval/ceval_subset', 'eval/cmmlu_subset'))(
    'the three column conventions on the repository fixtures (MMLU trimmed; C-Eval and CMMLU layouts with webtune-written questions)',
    () => {
      it('MMLU: no header, <subject>_<split>.csv', async () => {
        const task = await loadMcqTaskDirectory(fixturePath('eval/mmlu_subset'), { split: 'test' });
        expect(task.format).toBe('mmlu');
        expect(task.language).toBe('en');
        expect(task.subjects).toHaveLength(5);
        expect(task.subjects.reduce((total, subject) => total + subject.questions.length, 0)).toBe(100); // the first 20 test questions of each subject
        expect(task.subjects.every((subject) => subject.dev.length === 5)).toBe(true);
        expect(task.subjects[0]).toMatchObject({
          key: 'abstract_algebra',
          name: 'abstract algebra',
          category: 'STEM',
        });
      });

      it('C-Eval: id,question,A..D,answer,explanation; the test split has no answers', async () => {
        const val = await loadMcqTaskDirectory(fixturePath('eval/ceval_subset'), { split: 'val' });
        expect(val.format).toBe('ceval');
        expect(val.language).toBe('zh');
        expect(val.subjects.reduce((total, subject) => total + subject.questions.length, 0)).toBe(40);
        expect(val.subjects.find((subject) => subject.key === 'logic')?.name).toBe('逻辑学');
        const test = await loadMcqTaskDirectory(fixturePath('eval/ceval_subset'), { split: 'test' });
        expect(
          test.subjects.every((subject) => subject.questions.every((question) => question.answer === null)),
        ).toBe(true);
      });

      it('CMMLU: ,Question,A..D,Answer and <subject>.csv', async () => {
        const task = await loadMcqTaskDirectory(fixturePath('eval/cmmlu_subset'));
        expect(task.format).toBe('cmmlu');
        expect(task.language).toBe('zh');
        expect(task.subjects.reduce((total, subject) => total + subject.questions.length, 0)).toBe(60);
        expect(task.subjects[0].dev[0]).toMatchObject({
          question:
            '班级要准备一次春游。老师说，从今天开始，还要再过3个星期零5天才出发。请问从今天算起，一共还要等多少天？',
          answer: 'B',
          line: 2,
        });
        await expect(
          loadMcqTaskDirectory(fixturePath('eval/cmmlu_subset'), { split: 'val' }),
        ).rejects.toThrow(/has no val\/ folder of CSV files \(it has dev, test\/\)/);
      });
    },
  );

  describe('malformed task folders', () => {
    it('names the file and line of a row with a missing field', async () => {
      const run = memoryTask({
        'mapping.json': MAPPING,
        'test/algebra_test.csv': 'q1,a,b,c,d,A\n"q2\nmore",a,b,c,D\nq3,a,b,c,d,B\n',
      });
      await expect(run).rejects.toThrow(EvaluationError);
      await expect(run).rejects.toThrow(
        'test/algebra_test.csv:2: expected 6 fields (question, A, B, C, D, answer), found 5 (an unquoted comma or a missing field?)',
      );
    });

    it('names the file and line of an answer that is not A-D', async () => {
      const error = await memoryTask({
        'mapping.json': MAPPING,
        'test/algebra_test.csv': 'id,question,A,B,C,D,answer\n0,q,a,b,c,d,A\n1,q,a,b,c,d,E\n',
      }).catch((caught: unknown) => caught as EvaluationError);
      expect(error).toBeInstanceOf(EvaluationError);
      expect((error as EvaluationError).file).toBe('test/algebra_test.csv');
      expect((error as EvaluationError).line).toBe(3);
      expect((error as EvaluationError).message).toContain('the answer must be one of A, B, C, D, found "E"');
    });

    it('reports a subject missing from mapping.json, a missing mapping.json and a broken one', async () => {
      await expect(
        memoryTask({ 'mapping.json': MAPPING, 'test/geometry_test.csv': 'q,a,b,c,d,A\n' }),
      ).rejects.toThrow('test/geometry_test.csv: subject "geometry" is not in memory-task/mapping.json');
      await expect(memoryTask({ 'test/algebra_test.csv': 'q,a,b,c,d,A\n' })).rejects.toThrow(
        'memory-task has no mapping.json',
      );
      await expect(
        memoryTask({ 'mapping.json': '{"algebra": {"name": 3}}', 'test/algebra_test.csv': 'q,a,b,c,d,A\n' }),
      ).rejects.toThrow('mapping.json: subject "algebra" needs string fields "name" and "category"');
      await expect(
        memoryTask({ 'mapping.json': '{', 'test/algebra_test.csv': 'q,a,b,c,d,A\n' }),
      ).rejects.toThrow(/^mapping.json: not valid JSON/);
    });

    it('reports a missing split folder, an empty question, an unclosed quote and bad UTF-8', async () => {
      await expect(
        memoryTask({ 'mapping.json': MAPPING, 'dev/algebra_dev.csv': 'q,a,b,c,d,A\n' }),
      ).rejects.toThrow('memory-task has no test/ folder of CSV files (it has dev/)');
      await expect(
        memoryTask({ 'mapping.json': MAPPING, 'test/algebra_test.csv': 'q,a,b,c,d,A\n ,a,b,c,d,A\n' }),
      ).rejects.toThrow('test/algebra_test.csv:2: the question is empty');
      await expect(
        memoryTask({ 'mapping.json': MAPPING, 'test/algebra_test.csv': 'q,a,b,c,d,A\n"q,a,b,c,d,A\n' }),
      ).rejects.toThrow('test/algebra_test.csv:2: a quoted field opened on line 2 is never closed');
      const files = memoryFileResolver({
        'mapping.json': MAPPING,
        'test/algebra_test.csv': new Uint8Array([0x71, 0xff, 0x2c]),
      });
      await expect(loadMcqTask(files, 'memory-task')).rejects.toThrow(
        'test/algebra_test.csv: the file is not valid UTF-8',
      );
    });

    it('reports an unknown subject filter', async () => {
      await expect(loadMcqTaskDirectory(TINY, { subjects: ['poetry'] })).rejects.toThrow(
        /has no file for subject poetry; it has arithmetic, colours, stories/,
      );
    });
  });
});
