/**
 * A dataset's description, as in LLaMA-Factory's `dataset_info.json`: where the data is, its format and
 * which columns and tags hold what. Defaults follow LLaMA-Factory's.
 */

/** Row formats: LLaMA-Factory's three, plus `v1` for its newer typed-content `messages` rows. */
export type Formatting = 'alpaca' | 'sharegpt' | 'openai' | 'v1';

/** Column names (keys of a row) for each part of an example; LLaMA-Factory's keys. */
export interface DatasetColumns {
  prompt: string;
  query: string;
  response: string;
  messages: string;
  history?: string;
  system?: string;
  tools?: string;
  images?: string;
  videos?: string;
  audios?: string;
  chosen?: string;
  rejected?: string;
  kto_tag?: string;
}

/** Keys and role names inside ShareGPT/OpenAI messages; LLaMA-Factory's keys. */
export interface DatasetTags {
  role_tag: string;
  content_tag: string;
  user_tag: string;
  assistant_tag: string;
  observation_tag: string;
  function_tag: string;
  system_tag: string;
}

/** Where the rows come from. Only `file` can be read by webtune; the others are named in errors. */
export type DatasetOrigin = 'file' | 'hf_hub' | 'ms_hub' | 'om_hub' | 'script' | 'cloud_file';

/** A resolved dataset description. */
export interface DatasetAttributes {
  name: string;
  origin: DatasetOrigin;
  /** File or folder name relative to the dataset folder (origin `file`), or the hub/script/cloud address. */
  location: string;
  formatting: Formatting;
  ranking: boolean;
  subset?: string;
  split: string;
  folder?: string;
  /** Draw this many rows (seeded; with repeats when larger than the dataset). */
  numSamples?: number;
  columns: DatasetColumns;
  tags: DatasetTags;
}

/** LLaMA-Factory's default columns. */
export const DEFAULT_COLUMNS: DatasetColumns = {
  prompt: 'instruction',
  query: 'input',
  response: 'output',
  messages: 'conversations',
};

/** Default tags for `sharegpt` rows. */
export const SHAREGPT_TAGS: DatasetTags = {
  role_tag: 'from',
  content_tag: 'value',
  user_tag: 'human',
  assistant_tag: 'gpt',
  observation_tag: 'observation',
  function_tag: 'function_call',
  system_tag: 'system',
};

/** Default tags for `openai` and `v1` rows. */
export const OPENAI_TAGS: DatasetTags = {
  role_tag: 'role',
  content_tag: 'content',
  user_tag: 'user',
  assistant_tag: 'assistant',
  observation_tag: 'tool',
  function_tag: 'function_call',
  system_tag: 'system',
};
