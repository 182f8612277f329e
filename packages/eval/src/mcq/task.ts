/**
 * Multiple-choice benchmarks in LLaMA-Factory's task layout: a folder with `mapping.json`
 * (subject -> {name, category}) and `dev/`, `val/`, `test/` folders of one CSV per subject.
 * Three column conventions are read, told apart by the first row:
 *
 * - MMLU: no header; `question, A, B, C, D, answer`; files `<subject>_<split>.csv`.
 * - C-Eval: header `id,question,A,B,C,D,answer[,explanation]`; the test split has no answers.
 * - CMMLU: header `,Question,A,B,C,D,Answer` (the first column is a row number); files `<subject>.csv`.
 *
 * Any header that names `question`, `A`..`D` (and optionally `answer`) in any order and case is
 * read the same way. Every problem names the file and the line.
 */
import { type FileResolver, readAllBytes } from '@webtune/data';
import { parseCsv } from '../csv/csv.js';
import { EvaluationError } from '../errors.js';

/** The answer letters, in order. */
export const CHOICE_LETTERS = ['A', 'B', 'C', 'D'] as const;
export type ChoiceLetter = (typeof CHOICE_LETTERS)[number];

/** A task split: `dev` gives the few-shot examples, `val` or `test` is scored. */
export type McqSplit = 'dev' | 'val' | 'test';

/** Language of the prompt header and answer cue. */
export type McqLanguage = 'en' | 'zh';

/** Which column convention a file follows. */
export type McqFormat = 'mmlu' | 'ceval' | 'cmmlu' | 'header';

/** One question. */
export interface McqQuestion {
  question: string;
  choices: [string, string, string, string];
  /** The right letter, or null where the split publishes no answers (C-Eval test). */
  answer: ChoiceLetter | null;
  /** File (relative to the task folder) and the line the record starts on. */
  file: string;
  line: number;
}

/** One subject: its questions in the scored split and its dev examples. */
export interface McqSubject {
  /** Key in mapping.json and in the file names (`abstract_algebra`). */
  key: string;
  /** Name written in the prompt header (`abstract algebra`, `注册会计师`). */
  name: string;
  /** Category in mapping.json (STEM, Social Sciences, Humanities, Other). */
  category: string;
  questions: McqQuestion[];
  /** Few-shot examples, in file order; empty when the task has no dev file for the subject. */
  dev: McqQuestion[];
}

/** A loaded task split. */
export interface McqTask {
  /** Folder name or the location given. */
  name: string;
  split: McqSplit;
  format: McqFormat;
  /** Language guessed from the format: `zh` for C-Eval and CMMLU, `en` otherwise. */
  language: McqLanguage;
  subjects: McqSubject[];
}

/** Options of `loadMcqTask`. */
export interface LoadMcqTaskOptions {
  /** Split to score. Default `test`. */
  split?: McqSplit;
  /** Only these subjects (keys of mapping.json). Default: every subject with a file in the split. */
  subjects?: readonly string[];
  /** Name shown in reports. Default: `location`. */
  name?: string;
}

interface SubjectEntry {
  name: string;
  category: string;
}

/**
 * Loads a task split through a file resolver (a folder on disk via `@webtune/data/node`'s
 * `directoryFileResolver`, or `memoryFileResolver` of browser files). `location` names the folder
 * in messages. Throws `EvaluationError` naming the file and line of the first malformed row, a subject
 * missing from mapping.json, or a missing folder.
 */
export async function loadMcqTask(
  files: FileResolver,
  location: string,
  options: LoadMcqTaskOptions = {},
): Promise<McqTask> {
  const split = options.split ?? 'test';
  if (!['dev', 'val', 'test'].includes(split)) {
    throw new EvaluationError(`unknown split "${split}" (dev, val or test)`);
  }
  const mapping = await readMapping(files, location);
  const splitFiles = await listCsv(files, split);
  if (splitFiles === undefined) {
    const present = (
      await Promise.all(
        ['dev', 'val', 'test'].map(async (folder) => ((await listCsv(files, folder)) ? folder : '')),
      )
    ).filter(Boolean);
    throw new EvaluationError(
      `${location} has no ${split}/ folder of CSV files` +
        (present.length > 0
          ? ` (it has ${present.join(', ')}/)`
          : ' (a task folder holds dev/, val/, test/ and mapping.json)'),
    );
  }
  const devFiles = split === 'dev' ? splitFiles : ((await listCsv(files, 'dev')) ?? []);
  const bySubject = subjectFiles(splitFiles, split, mapping, location);
  const devBySubject = subjectFiles(devFiles, 'dev', mapping, location);
  let keys = [...bySubject.keys()].sort();
  if (options.subjects) {
    const unknown = options.subjects.filter((key) => !bySubject.has(key));
    if (unknown.length > 0) {
      throw new EvaluationError(
        `${location}/${split} has no file for subject ${unknown.join(', ')}; it has ${keys.join(', ')}`,
      );
    }
    keys = keys.filter((key) => options.subjects!.includes(key));
  }
  const subjects: McqSubject[] = [];
  const formats = new Set<McqFormat>();
  for (const key of keys) {
    const scored = await readQuestions(files, bySubject.get(key)!);
    formats.add(scored.format);
    const devPath = devBySubject.get(key);
    const dev = devPath ? await readQuestions(files, devPath) : undefined;
    if (dev) {
      const missing = dev.questions.find((question) => question.answer === null);
      if (missing) throw new EvaluationError('a dev example has no answer column', missing);
    }
    subjects.push({
      key,
      name: mapping[key].name,
      category: mapping[key].category,
      questions: scored.questions,
      dev: dev?.questions ?? [],
    });
  }
  const format: McqFormat = formats.size === 1 ? [...formats][0] : 'header';
  return {
    name: options.name ?? location,
    split,
    format,
    language: format === 'ceval' || format === 'cmmlu' ? 'zh' : 'en',
    subjects,
  };
}

async function readMapping(files: FileResolver, location: string): Promise<Record<string, SubjectEntry>> {
  let text: string;
  try {
    text = decodeText(await readAllBytes(await files.open('mapping.json')), 'mapping.json');
  } catch (error) {
    if (error instanceof EvaluationError) throw error;
    throw new EvaluationError(
      `${location} has no mapping.json (subject -> {"name", "category"}): ${(error as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new EvaluationError(`not valid JSON: ${(error as Error).message}`, { file: 'mapping.json' });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new EvaluationError('expected an object of subject -> {"name", "category"}', {
      file: 'mapping.json',
    });
  }
  const mapping: Record<string, SubjectEntry> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const entry = value as Partial<SubjectEntry> | null;
    if (
      entry === null ||
      typeof entry !== 'object' ||
      typeof entry.name !== 'string' ||
      typeof entry.category !== 'string'
    ) {
      throw new EvaluationError(`subject "${key}" needs string fields "name" and "category"`, {
        file: 'mapping.json',
      });
    }
    mapping[key] = { name: entry.name, category: entry.category };
  }
  return mapping;
}

async function listCsv(files: FileResolver, folder: string): Promise<string[] | undefined> {
  const listed = await files.list?.(folder);
  if (!listed) return undefined;
  const csv = listed
    .map((path) => path.replace(/\\/g, '/'))
    .filter((path) => path.toLowerCase().endsWith('.csv'));
  return csv.length > 0 ? csv : undefined;
}

/** Subject key of each file: `<subject>_<split>.csv` (MMLU, C-Eval) or `<subject>.csv` (CMMLU). */
function subjectFiles(
  paths: readonly string[],
  split: string,
  mapping: Record<string, SubjectEntry>,
  location: string,
): Map<string, string> {
  const result = new Map<string, string>();
  for (const path of paths) {
    const base = path.slice(path.lastIndexOf('/') + 1, -'.csv'.length);
    const key = base.endsWith(`_${split}`) && !(base in mapping) ? base.slice(0, -split.length - 1) : base;
    if (!(key in mapping)) {
      throw new EvaluationError(
        `subject "${key}" is not in ${location}/mapping.json; add {"name": ..., "category": ...} for it`,
        { file: path },
      );
    }
    if (result.has(key)) {
      throw new EvaluationError(`two files hold subject "${key}": ${result.get(key)} and ${path}`, {
        file: path,
      });
    }
    result.set(key, path);
  }
  return result;
}

interface ColumnLayout {
  format: McqFormat;
  /** Index of question, A, B, C, D, answer (-1: no answer column). */
  columns: [number, number, number, number, number, number];
  width: number;
  names: string[];
  hasHeader: boolean;
}

async function readQuestions(
  files: FileResolver,
  path: string,
): Promise<{ format: McqFormat; questions: McqQuestion[] }> {
  const text = decodeText(await readAllBytes(await files.open(path)), path);
  const records = parseCsv(text, path);
  if (records.length === 0) throw new EvaluationError('the file holds no rows', { file: path });
  const layout = columnLayout(records[0].fields);
  const questions: McqQuestion[] = [];
  for (const record of layout.hasHeader ? records.slice(1) : records) {
    const where = { file: path, line: record.line };
    if (record.fields.length !== layout.width) {
      throw new EvaluationError(
        `expected ${layout.width} fields (${layout.names.join(', ')}), found ${record.fields.length}` +
          (record.fields.length < layout.width
            ? ' (an unquoted comma or a missing field?)'
            : ' (a comma inside an unquoted field?)'),
        where,
      );
    }
    const [q, a, b, c, d, answerColumn] = layout.columns;
    const question = record.fields[q];
    if (question.trim().length === 0) throw new EvaluationError('the question is empty', where);
    let answer: ChoiceLetter | null = null;
    if (answerColumn >= 0) {
      const value = record.fields[answerColumn].trim().toUpperCase();
      if (!(CHOICE_LETTERS as readonly string[]).includes(value)) {
        throw new EvaluationError(
          `the answer must be one of A, B, C, D, found ${JSON.stringify(record.fields[answerColumn])}`,
          where,
        );
      }
      answer = value as ChoiceLetter;
    }
    questions.push({
      question,
      choices: [record.fields[a], record.fields[b], record.fields[c], record.fields[d]],
      answer,
      file: path,
      line: record.line,
    });
  }
  if (questions.length === 0)
    throw new EvaluationError('the file holds a header and no questions', { file: path });
  return { format: layout.format, questions };
}

function columnLayout(first: readonly string[]): ColumnLayout {
  const lower = first.map((field) => field.trim().toLowerCase());
  const find = (name: string) => lower.indexOf(name);
  const question = find('question');
  const letters = CHOICE_LETTERS.map((letter) => find(letter.toLowerCase()));
  if (question >= 0 && letters.every((index) => index >= 0)) {
    const answer = find('answer');
    const format: McqFormat =
      lower[0] === 'id' && first[1] === 'question'
        ? 'ceval'
        : lower[0] === '' && first[1] === 'Question'
          ? 'cmmlu'
          : 'header';
    return {
      format,
      columns: [question, letters[0], letters[1], letters[2], letters[3], answer],
      width: first.length,
      names: first.map((name, index) => (name.trim().length > 0 ? name : `column ${index + 1}`)),
      hasHeader: true,
    };
  }
  return {
    format: 'mmlu',
    columns: [0, 1, 2, 3, 4, 5],
    width: 6,
    names: ['question', 'A', 'B', 'C', 'D', 'answer'],
    hasHeader: false,
  };
}

function decodeText(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new EvaluationError('the file is not valid UTF-8 (save it as UTF-8)', { file });
  }
}
