import {
  type DatasetAttributes,
  type DatasetInfo,
  parseDatasetInfo,
  resolveDatasetAttributes,
} from '@webtune/data';
import { field, h, replaceChildren } from '../ui/dom.js';
import { filesOfInput } from '../ui/file-drop.js';

/** A dataset named in dataset_info.json, as the folder holds it. */
export interface NamedDataset {
  name: string;
  attributes: DatasetAttributes | null;
  /** Why it cannot be used here (a bad entry, a hub dataset, a missing file). */
  problem: string | null;
}

/** The folder's files keyed relative to the folder (`data/dataset_info.json` -> `dataset_info.json`). */
export function relativeToFolder(picked: Record<string, File>): Record<string, File> {
  const names = Object.keys(picked);
  const top = names[0]?.split('/')[0];
  const allUnder = top !== undefined && names.every((name) => name.startsWith(`${top}/`));
  return Object.fromEntries(
    Object.entries(picked).map(([name, file]) => [allUnder ? name.slice(top!.length + 1) : name, file]),
  );
}

/** Each entry of a dataset_info.json, checked with @webtune/data's rules, against the folder's files. */
export function namedDatasets(info: DatasetInfo, files: Record<string, Blob>): NamedDataset[] {
  return [...info.entries.keys()].map((name) => {
    try {
      const attributes = resolveDatasetAttributes(info, name);
      if (attributes.origin !== 'file') {
        return { name, attributes, problem: `a ${attributes.origin} dataset: only local files load here` };
      }
      const present = Object.keys(files).some(
        (path) => path === attributes.location || path.startsWith(`${attributes.location}/`),
      );
      return {
        name,
        attributes,
        problem: present ? null : `${attributes.location} is not in the picked folder`,
      };
    } catch (error) {
      return { name, attributes: null, problem: (error as Error).message };
    }
  });
}

/** The first rows of a dataset's file as written (JSON, JSON lines or text lines). */
export async function rawRows(file: Blob, fileName: string, count: number): Promise<string[]> {
  const text = await file.slice(0, 1 << 20).text();
  if (fileName.endsWith('.json')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (Array.isArray(parsed)) return parsed.slice(0, count).map((row) => JSON.stringify(row, null, 2));
    } catch {
      // larger than the slice, or JSON lines in a .json file: show lines
    }
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(0, count);
}

/**
 * The Data tab's folder picker: a LLaMA-Factory data folder (dataset_info.json and its files);
 * the named datasets with their formatting, columns and tags, a preview of raw rows, and the
 * chosen names handed to `use`.
 */
export function datasetInfoPicker(
  use: (files: Record<string, Blob>, names: string[]) => void,
  fail: (error: Error) => void,
): HTMLElement {
  const input = h('input', { type: 'file', webkitdirectory: true, multiple: true, name: 'dataset-folder' });
  const listing = h('div', { class: 'dataset-info' });
  input.addEventListener('change', async () => {
    const files = relativeToFolder(filesOfInput(input));
    const infoFile = files['dataset_info.json'];
    if (!infoFile) {
      replaceChildren(listing);
      fail(new Error('the picked folder has no dataset_info.json at its top'));
      return;
    }
    let info: DatasetInfo;
    try {
      info = parseDatasetInfo(await infoFile.text(), 'dataset_info.json');
    } catch (error) {
      replaceChildren(listing);
      fail(error as Error);
      return;
    }
    render(files, namedDatasets(info, files));
  });

  const render = (files: Record<string, File>, datasets: NamedDataset[]) => {
    const boxes = new Map<string, HTMLInputElement>();
    const rows = datasets.map((dataset) => {
      const box = h('input', {
        type: 'checkbox',
        name: `use-${dataset.name}`,
        disabled: dataset.problem !== null,
        'aria-label': `Use ${dataset.name}`,
      });
      boxes.set(dataset.name, box);
      const attributes = dataset.attributes;
      const preview = h('pre', { class: 'raw-rows', hidden: true });
      const previewButton = h(
        'button',
        {
          type: 'button',
          disabled: dataset.problem !== null,
          onclick: async () => {
            const location = attributes!.location;
            const file =
              files[location] ?? files[Object.keys(files).find((p) => p.startsWith(`${location}/`))!];
            const raw = await rawRows(file, location, 3);
            preview.textContent = raw.join('\n\n');
            preview.hidden = false;
          },
        },
        'Preview raw rows',
      );
      // The columns the formatting reads (alpaca: prompt/query/response...; sharegpt/openai: messages...).
      const messageStyle = attributes?.formatting === 'sharegpt' || attributes?.formatting === 'openai';
      const alpacaOnly = new Set(['prompt', 'query', 'response']);
      const pairs = (record: object) =>
        Object.entries(record)
          .filter(([, value]) => value !== undefined)
          .filter(([key]) => (messageStyle ? !alpacaOnly.has(key) : key !== 'messages'))
          .map(([key, value]) => `${key}: ${value}`)
          .join(', ');
      return h(
        'tr',
        { 'data-dataset': dataset.name },
        h('td', {}, box),
        h('th', { scope: 'row' }, dataset.name),
        h('td', { 'data-label': 'File' }, attributes?.location ?? '–'),
        h(
          'td',
          { 'data-label': 'Format' },
          attributes ? `${attributes.formatting}${attributes.ranking ? ', ranking (pairs)' : ''}` : '–',
        ),
        h('td', { 'data-label': 'Columns' }, attributes ? pairs(attributes.columns) : '–'),
        h('td', { 'data-label': 'Tags' }, attributes && messageStyle ? pairs(attributes.tags) || '–' : '–'),
        h(
          'td',
          { 'data-label': 'Rows' },
          dataset.problem ? h('span', { class: 'problem' }, dataset.problem) : previewButton,
          preview,
        ),
      );
    });
    const useButton = h(
      'button',
      {
        type: 'button',
        onclick: () => {
          const names = [...boxes].filter(([, box]) => box.checked).map(([name]) => name);
          if (names.length === 0) fail(new Error('tick at least one dataset of dataset_info.json'));
          else use(files, names);
        },
      },
      'Use the ticked datasets',
    );
    replaceChildren(
      listing,
      h(
        'div',
        { class: 'table-wrap bounded' },
        h(
          'table',
          { class: 'dataset-info-table stack' },
          h('caption', {}, `dataset_info.json: ${datasets.length} datasets`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Use', 'Name', 'File', 'Format', 'Columns', 'Tags', 'Rows'].map((name) =>
                h('th', { scope: 'col' }, name),
              ),
            ),
          ),
          h('tbody', {}, rows),
        ),
      ),
      h('div', { class: 'actions' }, useButton),
    );
  };

  return h(
    'div',
    { class: 'dataset-folder' },
    field(
      'Dataset folder',
      input,
      'A LLaMA-Factory data folder: its dataset_info.json names the datasets, their columns and tags.',
    ),
    listing,
  );
}
