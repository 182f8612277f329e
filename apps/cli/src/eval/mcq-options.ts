/** The multiple-choice options `eval mcq` and `eval forgetting` share, and their checks. */
import type { McqLanguage, McqSplit } from '@webtune/eval';
import { numberOption, type OptionSpec, optional, type Values } from '../args.js';
import { UsageError } from '../ui.js';

/** --split, --n-shot, --lang, --template, --limit. */
export const MCQ_OPTIONS: OptionSpec = {
  split: { type: 'string' },
  'n-shot': { type: 'string' },
  lang: { type: 'string' },
  template: { type: 'string' },
  limit: { type: 'string' },
};

export interface McqChoices {
  split: McqSplit;
  nShot: number | undefined;
  limit: number | undefined;
  language: McqLanguage | undefined;
  template: string | undefined;
}

/** Reads and checks the multiple-choice options: a split of test (default), val or dev, a language of en or zh. */
export function mcqChoicesFrom(values: Values): McqChoices {
  const split = optional(values, 'split') ?? 'test';
  if (split !== 'test' && split !== 'val' && split !== 'dev') {
    throw new UsageError(`--split must be test, val or dev, got "${split}"`);
  }
  const language = optional(values, 'lang');
  if (language !== undefined && language !== 'en' && language !== 'zh') {
    throw new UsageError(`--lang must be en or zh, got "${language}"`);
  }
  return {
    split,
    nShot: numberOption(values, 'n-shot', { integer: true, min: 0 }),
    limit: numberOption(values, 'limit', { integer: true, min: 1 }),
    language,
    template: optional(values, 'template'),
  };
}
