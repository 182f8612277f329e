import { type DataIssue, type PreviewEntry, TEMPLATE_NAMES } from '@webtune/data';
import type { BoardContext } from '../board.js';
import type { DataSummary, StageName } from '../engine/protocol.js';
import { downloadLink, field, h, numberInput, replaceChildren, select } from '../ui/dom.js';
import { dropZone, filesOfInput } from '../ui/file-drop.js';
import { formatBytes } from '../ui/format.js';
import { tokenHistogram } from '../ui/histogram.js';
import { TaskStatus } from '../ui/task-status.js';
import { datasetInfoPicker } from './dataset-info-picker.js';
import { STAGE_LABELS } from './train-settings.js';

/** Data: datasets in, the validation report, token lengths against cutoff_len, trained tokens shown. */
export function dataTab(context: BoardContext): HTMLElement {
  const { engine, store } = context;
  const status = new TaskStatus('Checking the data');
  let files: Record<string, Blob> = {};
  /** Names in the folder's dataset_info.json when a data folder was picked; [] when each file is a dataset. */
  let named: string[] = [];
  const warnings = h('ul', { class: 'data-warnings', 'aria-label': 'Warnings about the model and settings' });
  const fileList = h('ul', { class: 'file-list', 'aria-label': 'Datasets to use' });
  const report = h('div', { class: 'data-report' });

  const stage = select('data-stage', Object.entries(STAGE_LABELS), 'sft');
  const template = select(
    'template',
    [
      ['', 'as LLaMA-Factory'],
      ['auto', 'auto (model’s Jinja)'],
      ...TEMPLATE_NAMES.map((name): [string, string] => [name, name]),
    ],
    '',
  );
  const cutoffLen = numberInput('cutoff_len', 2048, { min: 1, step: 1 });
  const valSize = numberInput('val_size', 0, { min: 0 });
  const maxSamples = numberInput('max_samples', 100000, { min: 0, step: 1 });
  const checkButton = h('button', { type: 'submit', disabled: true }, 'Check data');

  const setFiles = (picked: Record<string, Blob>, names: string[] = []) => {
    files = picked;
    named = names;
    replaceChildren(
      fileList,
      names.length > 0
        ? names.map((name) => h('li', {}, `${name} (dataset_info.json)`))
        : Object.entries(files).map(([name, file]) => h('li', {}, `${name} (${formatBytes(file.size)})`)),
    );
    updateButton();
  };
  const updateButton = () => {
    checkButton.disabled = Object.keys(files).length === 0 || !store.get().model;
  };
  const input = h('input', {
    type: 'file',
    multiple: true,
    name: 'dataset-files',
    accept: '.json,.jsonl,.csv,.txt,.parquet',
  });
  input.addEventListener('change', () => setFiles(filesOfInput(input)));
  // Files from elsewhere (votes, a data folder) replace what the file input shows: it is emptied.
  const useOther = (given: Record<string, Blob>, names: string[] = []) => {
    input.value = '';
    setFiles(given, names);
  };
  context.onUseDatasets((given, givenStage) => {
    useOther(given);
    stage.value = givenStage;
    store.update({ stage: givenStage });
  });
  stage.addEventListener('change', () => store.update({ stage: stage.value as StageName }));
  const showWarnings = () => {
    const model = store.get().model;
    const lines = [...(model?.warnings ?? [])];
    const cutoff = Number(cutoffLen.value);
    if (model && model.maxPositions > 0 && cutoff > model.maxPositions) {
      lines.push(
        `cutoff_len ${cutoff} is longer than the model's ${model.maxPositions} positions (max_position_embeddings): set it to ${model.maxPositions} or less.`,
      );
    }
    replaceChildren(
      warnings,
      lines.map((line) => h('li', { class: 'warning' }, line)),
    );
  };
  cutoffLen.addEventListener('input', showWarnings);
  store.subscribe((state, previous) => {
    if (state.model !== previous.model) {
      updateButton();
      showWarnings();
      // A report of data checked with another model no longer holds.
      if (report.childElementCount > 0) {
        replaceChildren(
          report,
          h('p', { class: 'note stale' }, 'The model changed: check the data again for this model.'),
        );
      }
    }
  });
  context.dataConfig = () => dataConfig();
  context.onRunConfig((config) => {
    if (typeof config.stage === 'string' && config.stage in STAGE_LABELS) {
      stage.value = config.stage;
      store.update({ stage: config.stage as StageName });
    }
    if (typeof config.template === 'string') template.value = config.template;
    if (typeof config.cutoff_len === 'number') cutoffLen.value = String(config.cutoff_len);
    if (typeof config.val_size === 'number') valSize.value = String(config.val_size);
    if (typeof config.max_samples === 'number') maxSamples.value = String(config.max_samples);
    showWarnings();
  });
  // LLaMA-Factory's keys; the worker plans them as `webtune train` plans a config file.
  const dataConfig = (): Record<string, unknown> => {
    const config: Record<string, unknown> = {
      stage: stage.value,
      cutoff_len: Number(cutoffLen.value),
      val_size: Number(valSize.value),
    };
    if (template.value !== '') config.template = template.value;
    if (Number(maxSamples.value) > 0) config.max_samples = Number(maxSamples.value);
    return config;
  };

  const form = h(
    'form',
    {
      class: 'data-form',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const settings = {
          stage: stage.value as StageName,
          config: dataConfig(),
          ...(named.length > 0 ? { named } : {}),
        };
        // A check replaces the data: until it succeeds, none is active (no stale report, no Start).
        replaceChildren(report);
        store.update({ data: null });
        const summary = await status.run(
          'Reading, checking and tokenizing',
          () => engine.call({ kind: 'prepare-data', files, settings }, status.onEvent),
          (result) =>
            `${result.trainRows} training rows, ${result.validationRows} validation rows, ${result.report.rejected.length} rejected.`,
        );
        if (summary) {
          renderReport(report, summary);
          store.update({ data: summary });
        }
      },
    },
    h(
      'div',
      { class: 'pickers' },
      field(
        'Dataset files',
        input,
        'JSON, JSON lines, CSV or text, in LLaMA-Factory’s formats (alpaca, sharegpt, openai, preference pairs).',
      ),
    ),
    dropZone('Drop dataset files here', (dropped) => useOther(dropped)),
    datasetInfoPicker(
      (folderFiles, names) => useOther(folderFiles, names),
      (error) => status.fail(error),
    ),
    fileList,
    warnings,
    h(
      'div',
      { class: 'form-grid' },
      field(
        'Stage',
        stage,
        'Decides which rows are valid: SFT and PPO need answers (PPO takes their prompts), DPO and the reward model chosen and rejected answers, KTO answers with a true/false label (kto_tag), pretraining text.',
      ),
      field(
        'Chat template',
        template,
        'How a conversation becomes tokens (LLaMA-Factory’s template names). As LLaMA-Factory: the tokenizer’s chat_template read as a template, or empty when it has none; auto: the tokenizer’s Jinja template as Transformers renders it.',
      ),
      field('cutoff_len', cutoffLen, 'Longest sequence in tokens; longer examples are cut.'),
      field('val_size', valSize, 'Share (below 1) or number of rows held out to compute the eval loss.'),
      field('max_samples', maxSamples, 'Keep at most this many rows per dataset; 0 keeps all.'),
    ),
    h('div', { class: 'actions' }, checkButton),
    status.element,
  );

  return h(
    'section',
    { 'aria-labelledby': 'data-heading' },
    h('h2', { id: 'data-heading' }, 'Data'),
    h('div', { class: 'card' }, form),
    report,
  );
}

function renderReport(element: HTMLElement, summary: DataSummary): void {
  const { report } = summary;
  const cutoff = report.cutoffLen ?? 0;
  const tokens = report.tokens;
  replaceChildren(
    element,
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Validation report'),
      h(
        'ul',
        { class: 'dataset-summary' },
        report.datasets.map((dataset) =>
          h(
            'li',
            {},
            h('strong', {}, dataset.name),
            ` (${dataset.formatting}): ${dataset.rowsRead} rows read, ${dataset.rowsKept} kept, ${dataset.rowsRejected} rejected`,
            dataset.notes.length > 0
              ? h(
                  'ul',
                  {},
                  dataset.notes.map((note) => h('li', { class: 'note' }, note)),
                )
              : null,
          ),
        ),
      ),
      report.template
        ? h(
            'p',
            {},
            `Template: ${report.template}. `,
            report.split ? `Split: ${report.split.train} train, ${report.split.validation} validation.` : '',
          )
        : null,
      report.rejected.length > 0
        ? issueTable('Rejected rows', report.rejected, 'rejected-rows', MAX_REJECTED_SHOWN)
        : h('p', { class: 'ok' }, 'No row was rejected.'),
      report.warnings.length > 0 ? issueTable('Warnings', report.warnings.slice(0, 50), 'warnings') : null,
    ),
    tokens
      ? h(
          'div',
          { class: 'card' },
          h('h3', {}, 'Token lengths'),
          h(
            'p',
            {},
            `Median ${tokens.p50}, 95th percentile ${tokens.p95}, longest ${tokens.max} tokens; ` +
              `${tokens.truncated} of ${tokens.examples} examples exceed cutoff_len ${cutoff} (${tokens.truncatedTokens} tokens cut). ` +
              `${tokens.trainedTokens} of ${tokens.totalTokens} kept tokens are trained.`,
          ),
          tokenHistogram(summary.lengths, cutoff),
        )
      : null,
    report.preview.length > 0
      ? h(
          'div',
          { class: 'card' },
          h('h3', {}, 'Examples as the model sees them'),
          h(
            'p',
            { class: 'help' },
            'Highlighted text is trained on (its tokens have labels); the rest is context only.',
          ),
          report.preview.map(previewBlock),
        )
      : null,
  );
}

/** Rows of the rejected-rows table on the page; all of them are in its download. */
const MAX_REJECTED_SHOWN = 20;

function issueTable(
  title: string,
  allIssues: readonly DataIssue[],
  className: string,
  limit = allIssues.length,
): HTMLElement {
  const issues = allIssues.slice(0, limit);
  const more = allIssues.length - issues.length;
  return h(
    'div',
    { class: 'table-wrap bounded' },
    more > 0
      ? h(
          'p',
          { class: 'note' },
          `${title}: the first ${issues.length} of ${allIssues.length} are shown. `,
          downloadLink(`${className}.json`, JSON.stringify(allIssues, null, 2), 'application/json'),
        )
      : null,
    h(
      'table',
      { class: `issues stack ${className}` },
      h(
        'caption',
        {},
        more > 0 ? `${title}: ${allIssues.length} (${issues.length} shown)` : `${title}: ${allIssues.length}`,
      ),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['File', 'Row', 'Line', 'Field', 'Expected', 'Got'].map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      h(
        'tbody',
        {},
        issues.map((issue) =>
          h(
            'tr',
            { 'data-row': issue.row ?? '' },
            h('td', { 'data-label': 'File' }, issue.file),
            h('td', { 'data-label': 'Row' }, issue.row ?? '–'),
            h('td', { 'data-label': 'Line' }, issue.line ?? '–'),
            h('td', { 'data-label': 'Field' }, h('code', {}, issue.field)),
            h('td', { 'data-label': 'Expected' }, issue.expected),
            h('td', { 'data-label': 'Got' }, [issue.got ?? '', issue.detail ? ` (${issue.detail})` : '']),
          ),
        ),
      ),
    ),
  );
}

function previewBlock(entry: PreviewEntry): HTMLElement {
  const where = `${entry.location.dataset ?? entry.location.file} row ${entry.location.row ?? '?'}`;
  return h(
    'figure',
    { class: 'preview' },
    h('figcaption', {}, `${where}: ${entry.totalTokens} tokens, ${entry.trainedTokens} trained`),
    h(
      'pre',
      { class: 'preview-text' },
      entry.segments.map((segment) =>
        segment.trained
          ? h('mark', { title: `${segment.tokens} trained tokens` }, segment.text)
          : h('span', {}, segment.text),
      ),
    ),
  );
}
