/**
 * Which files of a repository a run needs: a dataset's data files for a subset, split and folder
 * (the `datasets` library's file naming conventions), or a model's config, weights and tokenizer.
 */
import { HubError } from './hub-error.js';

/** LLaMA-Factory's `subset`, `split` and `folder` of a hub dataset. */
export interface DatasetSelection {
  subset?: string;
  /** Default train. */
  split?: string;
  folder?: string;
}

const DATA_FILE = /\.(parquet|jsonl|json|csv)$/i;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The data files of a dataset repository for a selection, sorted. A subset is a folder of that name
 * anywhere in the path; a split is a path part named after it, or a file name starting or ending with
 * it around `-`, `_`, `.` or digits (`train-00000-of-00002.parquet`, `data/train.jsonl`, `test/0000.parquet`).
 * When no file names a split, every file is the train split, as the `datasets` library reads them.
 */
export function selectDatasetFiles(
  paths: readonly string[],
  selection: DatasetSelection,
  repo = 'dataset',
): string[] {
  const split = selection.split ?? 'train';
  let files = paths.filter(
    (path) => DATA_FILE.test(path) && !path.split('/').some((part) => part.startsWith('.')),
  );
  const describeFiles = (list: readonly string[]) =>
    list.length === 0 ? 'no data files' : `${list.slice(0, 8).join(', ')}${list.length > 8 ? ', ...' : ''}`;
  if (selection.folder) {
    const prefix = `${selection.folder.replace(/^\/+|\/+$/g, '')}/`;
    const inside = files.filter((path) => path.startsWith(prefix));
    if (inside.length === 0) {
      throw new HubError(
        `${repo}: no .parquet/.jsonl/.json/.csv file under folder "${selection.folder}" (files: ${describeFiles(files)})`,
      );
    }
    files = inside;
  }
  if (selection.subset) {
    const subset = selection.subset;
    const inside = files.filter((path) => path.split('/').slice(0, -1).includes(subset));
    if (inside.length === 0) {
      throw new HubError(
        `${repo}: no data files for subset "${subset}" (a folder of that name; files: ${describeFiles(files)})`,
      );
    }
    files = inside;
  }
  const splitPattern = new RegExp(`(^|[-._ 0-9/])${escapeRegExp(split)}([-._ 0-9/]|$)`);
  const anySplit =
    /(^|[-._ 0-9/])(train|training|test|testing|eval|evaluation|validation|valid|dev)([-._ 0-9/]|$)/;
  const matching = files.filter((path) => splitPattern.test(path));
  if (matching.length > 0) return matching.sort();
  if (split === 'train' && !files.some((path) => anySplit.test(path))) return [...files].sort();
  throw new HubError(`${repo}: no data files for split "${split}" (files: ${describeFiles(files)})`);
}

const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'chat_template.jinja',
];

/**
 * The files a model run reads: config, generation config, tokenizer files and safetensors weights
 * (the index and its shards, or model.safetensors). Throws when there are no safetensors weights.
 */
export function selectModelFiles(paths: readonly string[], repo = 'model'): string[] {
  const top = paths.filter((path) => !path.includes('/'));
  const weights = top.filter(
    (path) => path.endsWith('.safetensors') || path === 'model.safetensors.index.json',
  );
  if (!top.includes('config.json')) throw new HubError(`${repo} has no config.json`);
  if (!weights.some((path) => path === 'model.safetensors' || path === 'model.safetensors.index.json')) {
    throw new HubError(
      `${repo} has neither model.safetensors nor model.safetensors.index.json (only safetensors weights are read)`,
    );
  }
  const chosen = top.filter((path) => MODEL_FILES.includes(path));
  const shards = top.includes('model.safetensors.index.json')
    ? weights.filter((path) => path !== 'model.safetensors')
    : ['model.safetensors'];
  return [...chosen, ...shards.sort()];
}
