/** Results of a multiple-choice run: per question, per subject, per category and overall; JSON and Markdown. */
import type { ChoiceLetter, McqLanguage, McqSplit, McqTask } from './task.js';

/** The outcome for one question. */
export interface McqQuestionResult {
  /** Subject key. */
  subject: string;
  /** Index of the question in its subject's split file. */
  index: number;
  file: string;
  line: number;
  answer: ChoiceLetter;
  prediction: ChoiceLetter;
  correct: boolean;
  /** Logits of A, B, C, D. */
  logits: number[];
  /** Softmax over the four logits. */
  probabilities: number[];
  /** Dev examples in the prompt (fewer than asked when the prompt would not fit). */
  shots: number;
  promptTokens: number;
  /** The prompt was cut at the front to fit even with no examples. */
  clipped: boolean;
}

/** Accuracy over a group of questions. */
export interface McqScore {
  questions: number;
  correct: number;
  /** correct / questions, in [0, 1]. */
  accuracy: number;
}

export interface McqSubjectScore extends McqScore {
  key: string;
  name: string;
  category: string;
}

export interface McqCategoryScore extends McqScore {
  category: string;
  subjects: number;
}

/** Speed of the run. */
export interface McqTiming {
  seconds: number;
  forwardPasses: number;
  promptTokens: number;
  questionsPerSecond: number;
  tokensPerSecond: number;
}

/** A whole run. Accuracy per category and overall counts every question once (micro average). */
export interface McqResult {
  task: string;
  split: McqSplit;
  language: McqLanguage;
  nShot: number;
  template: string;
  subjects: McqSubjectScore[];
  /** Categories in the order STEM, Social Sciences, Humanities, Other, then any others. */
  categories: McqCategoryScore[];
  overall: McqScore & { /** Mean of the subject accuracies. */ subjectAverage: number };
  /** Questions with fewer examples than asked / cut to fit the context. */
  shortened: { fewerShots: number; clipped: number };
  timing: McqTiming;
  questions: McqQuestionResult[];
}

const CATEGORY_ORDER = ['STEM', 'Social Sciences', 'Humanities', 'Other'];

/** Gathers per-question outcomes into subject, category and overall scores. */
export function aggregateMcq(
  task: Pick<McqTask, 'name' | 'split' | 'subjects'>,
  questions: McqQuestionResult[],
  run: { nShot: number; language: McqLanguage; template: string; timing: McqTiming },
): McqResult {
  const score = (items: readonly McqQuestionResult[]): McqScore => {
    const correct = items.filter((item) => item.correct).length;
    return { questions: items.length, correct, accuracy: items.length > 0 ? correct / items.length : 0 };
  };
  const subjects: McqSubjectScore[] = task.subjects
    .map((subject) => ({
      key: subject.key,
      name: subject.name,
      category: subject.category,
      ...score(questions.filter((item) => item.subject === subject.key)),
    }))
    .filter((subject) => subject.questions > 0);
  const categoryNames = [...new Set(subjects.map((subject) => subject.category))].sort((a, b) => {
    const rank = (name: string) =>
      CATEGORY_ORDER.includes(name) ? CATEGORY_ORDER.indexOf(name) : CATEGORY_ORDER.length;
    return rank(a) - rank(b) || a.localeCompare(b);
  });
  const categories = categoryNames.map((category) => {
    const keys = new Set(
      subjects.filter((subject) => subject.category === category).map((subject) => subject.key),
    );
    return { category, subjects: keys.size, ...score(questions.filter((item) => keys.has(item.subject))) };
  });
  const subjectAverage =
    subjects.length > 0
      ? subjects.reduce((total, subject) => total + subject.accuracy, 0) / subjects.length
      : 0;
  return {
    task: task.name,
    split: task.split,
    language: run.language,
    nShot: run.nShot,
    template: run.template,
    subjects,
    categories,
    overall: { ...score(questions), subjectAverage },
    shortened: {
      fewerShots: questions.filter((item) => item.shots < run.nShot).length,
      clipped: questions.filter((item) => item.clipped).length,
    },
    timing: run.timing,
    questions,
  };
}

/** The result as JSON text; `questions: false` leaves out the per-question records. */
export function mcqResultToJson(result: McqResult, options: { questions?: boolean } = {}): string {
  const { questions, ...summary } = result;
  return `${JSON.stringify(options.questions === false ? summary : { ...summary, questions }, null, 2)}\n`;
}

const percent = (value: number) => (value * 100).toFixed(2);

/** The result as a Markdown report: categories and overall, then one row per subject. */
export function formatMcqMarkdown(result: McqResult): string {
  const lines = [
    `# ${result.task} (${result.split}, ${result.nShot}-shot, ${result.language}, template ${result.template})`,
    '',
    '| category | subjects | questions | accuracy (%) |',
    '| --- | ---: | ---: | ---: |',
    ...result.categories.map(
      (category) =>
        `| ${category.category} | ${category.subjects} | ${category.questions} | ${percent(category.accuracy)} |`,
    ),
    `| **Average** | ${result.subjects.length} | ${result.overall.questions} | **${percent(result.overall.accuracy)}** |`,
    '',
    '| subject | category | questions | correct | accuracy (%) |',
    '| --- | --- | ---: | ---: | ---: |',
    ...result.subjects.map(
      (subject) =>
        `| ${subject.name} (\`${subject.key}\`) | ${subject.category} | ${subject.questions} | ${subject.correct} | ${percent(subject.accuracy)} |`,
    ),
    '',
    `${result.timing.questionsPerSecond.toFixed(1)} questions/s, ${Math.round(result.timing.tokensPerSecond)} prompt tokens/s, ` +
      `${result.timing.forwardPasses} forward passes in ${result.timing.seconds.toFixed(1)} s.`,
  ];
  if (result.shortened.fewerShots > 0 || result.shortened.clipped > 0) {
    lines.push(
      '',
      `${result.shortened.fewerShots} questions had fewer than ${result.nShot} examples to fit the context` +
        (result.shortened.clipped > 0
          ? `; ${result.shortened.clipped} were cut at the front even with none`
          : '') +
        '.',
    );
  }
  return `${lines.join('\n')}\n`;
}
