import {
  DataError,
  type Example,
  formatIssue,
  formatValidationReport,
  NoValidRowsError,
  type PreviewEntry,
  type Stage,
  type ValidationReport,
} from '@webtune/data';
import { loadExamplesFromDirectory, prepareDatasetFromDirectory } from '@webtune/data/node';
import { loadTokenizer } from '@webtune/tokenizers/node';
import { numberOption, optional, parseCommandLine } from '../args.js';
import { resolveDatasets } from '../datasets.js';
import { downloadHubDataset } from '../hub-datasets.js';
import { requireDirectory } from '../model-loading.js';
import { bold, cyan, dim, green, red, UsageError, yellow } from '../ui.js';

export const dataHelp = `webtune data validate|preview|stats DATASET [options]

Reads a dataset as training would and reports on it. DATASET is a file or folder path, a name
in DIR/dataset_info.json, or several joined by commas. With --model the rows are rendered with the
chat template and tokenized: the report adds token lengths against cutoff_len and a preview of the
trained tokens (between ⟦ ⟧). No GPU is used.

  validate   every rejected row with file, row, field and what was expected; exits 1 if any
  preview    the first examples (--count N): as conversations, or as tokens with --model
  stats      rows kept and rejected, token lengths (with --model)

Options:
  --dataset-dir DIR     folder of dataset_info.json (default ./data)
  --formatting F        alpaca, sharegpt, openai or v1 for a file (default: from its first row)
  --stage S             pt, sft, rm, dpo or kto (default sft)
  --model DIR           model folder whose tokenizer (and chat template) to use
  --template NAME       chat template (default: the tokenizer's own)
  --cutoff-len N        longest sequence in tokens (default 2048)
  --max-samples N       first N rows of each dataset
  --placeholder K=V     fill {{K}} in the text (repeatable), e.g. name=Webtune
  --count N             examples shown by preview (default 3)
  --json                the report as JSON

Examples:
  webtune data validate train.jsonl
  webtune data validate identity,alpaca_en_demo --dataset-dir data
  webtune data preview chat.json --model ./Qwen3-0.6B --count 2
  webtune data stats alpaca_en_demo --dataset-dir data --model ./Qwen3-0.6B --cutoff-len 1024 --json`;

const STAGES: Stage[] = ['pt', 'sft', 'rm', 'dpo', 'kto'];

export async function dataCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action !== 'validate' && action !== 'preview' && action !== 'stats') {
    if (action === undefined || action.startsWith('-')) {
      throw new UsageError('name an action: webtune data validate|preview|stats DATASET');
    }
    throw new UsageError(`unknown data action "${action}"; actions: validate, preview, stats`);
  }
  const { values, positionals } = parseCommandLine(
    rest,
    {
      'dataset-dir': { type: 'string' },
      formatting: { type: 'string' },
      stage: { type: 'string' },
      model: { type: 'string' },
      template: { type: 'string' },
      'cutoff-len': { type: 'string' },
      'max-samples': { type: 'string' },
      placeholder: { type: 'string', multiple: true },
      count: { type: 'string' },
      json: { type: 'boolean' },
    },
    { min: 1, max: 1, what: 'DATASET (a file, or a name in dataset_info.json)' },
  );
  const stage = (optional(values, 'stage') ?? 'sft') as Stage;
  if (!STAGES.includes(stage))
    throw new UsageError(`--stage must be one of ${STAGES.join(', ')}, got "${stage}"`);
  const count = numberOption(values, 'count', { integer: true, min: 1 }) ?? 3;
  const placeholders: Record<string, string> = {};
  for (const pair of (values.placeholder as string[] | undefined) ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--placeholder must be KEY=VALUE, got "${pair}"`);
    placeholders[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const { datasetDir, datasets } = resolveDatasets(positionals[0], {
    datasetDir: optional(values, 'dataset-dir'),
    formatting: optional(values, 'formatting'),
  });
  const modelDir = optional(values, 'model');
  if (optional(values, 'template') && !modelDir) {
    throw new UsageError('--template needs --model (the template renders with its tokenizer)');
  }
  const common = {
    datasetDir,
    datasets,
    stage,
    maxSamples: numberOption(values, 'max-samples', { integer: true, min: 1 }),
    placeholders: Object.keys(placeholders).length > 0 ? placeholders : undefined,
    hubDataset: downloadHubDataset,
  };

  let report: ValidationReport;
  let examples: Example[] = [];
  try {
    if (modelDir) {
      const tokenizer = await loadTokenizer(requireDirectory(modelDir, 'model folder'));
      const prepared = await prepareDatasetFromDirectory({
        ...common,
        tokenizer,
        template: optional(values, 'template'),
        cutoffLen: numberOption(values, 'cutoff-len', { integer: true, min: 1 }),
        previewCount: action === 'preview' ? count : 3,
      });
      report = prepared.report;
    } else {
      const loaded = await loadExamplesFromDirectory(common);
      report = loaded.report;
      examples = loaded.train.concat(loaded.validation);
    }
  } catch (error) {
    if (error instanceof NoValidRowsError) {
      report = error.report;
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else console.log(formatValidationReport(report));
      throw new UsageError(`no usable rows: ${formatIssue(error.issue)}`, 1);
    }
    if (error instanceof DataError) throw new UsageError(error.message, 1);
    throw error;
  }

  if (values.json) {
    const { preview, ...rest } = report;
    const json =
      action === 'preview'
        ? modelDir
          ? preview
          : examples.slice(0, count)
        : action === 'stats'
          ? {
              datasets: rest.datasets,
              tokens: rest.tokens,
              split: rest.split,
              rejected: report.rejected.length,
            }
          : rest;
    console.log(JSON.stringify(json, null, 2));
  } else if (action === 'validate') {
    console.log(formatValidationReport(report, { maxPreviews: 0 }));
    if (report.rejected.length === 0) console.log(green('ok: every row is usable'));
  } else if (action === 'preview') {
    if (modelDir) for (const entry of report.preview.slice(0, count)) console.log(renderPreview(entry));
    else for (const example of examples.slice(0, count)) console.log(renderExample(example));
  } else {
    printStats(report);
  }
  if (action === 'validate' && report.rejected.length > 0) {
    const first = formatIssue(report.rejected[0]);
    throw new UsageError(`${report.rejected.length} row(s) rejected; the first: ${first}`, 1);
  }
  return 0;
}

function renderPreview(entry: PreviewEntry): string {
  const where = `${entry.location.dataset ?? entry.location.file} row ${entry.location.row}`;
  const body = entry.segments
    .map((segment) => (segment.trained ? green(`⟦${segment.text}⟧`) : dim(segment.text)))
    .join('');
  return `${bold(`── ${where}`)}: ${entry.totalTokens} tokens, ${entry.trainedTokens} trained (⟦ ⟧)\n${body}\n`;
}

function renderExample(example: Example): string {
  const where = `${example.location.dataset ?? example.location.file} row ${example.location.row}`;
  const lines = [bold(`── ${where} (${example.kind})`)];
  if (example.kind === 'pretrain') lines.push(example.text);
  else {
    if (example.conversation.system) lines.push(`${yellow('system')}: ${example.conversation.system}`);
    for (const turn of example.conversation.turns) lines.push(`${cyan(turn.role)}: ${turn.content}`);
    if (example.kind === 'preference') {
      lines.push(`${green('chosen')}: ${example.chosen.content}`);
      lines.push(`${red('rejected')}: ${example.rejected.content}`);
    }
    if (example.kind === 'kto') lines.push(dim(`(desirable: ${example.desirable})`));
  }
  return `${lines.join('\n')}\n`;
}

function printStats(report: ValidationReport): void {
  for (const dataset of report.datasets) {
    console.log(
      `${bold(dataset.name)} (${dataset.formatting}): ${dataset.rowsRead} rows, ${dataset.rowsKept} kept, ${dataset.rowsRejected} rejected, ${dataset.rowsSelected} selected`,
    );
  }
  if (report.split) console.log(`split: ${report.split.train} train, ${report.split.validation} validation`);
  const t = report.tokens;
  if (t) {
    console.log(
      `tokens per example: p50 ${t.p50}, p95 ${t.p95}, max ${t.max}, mean ${t.mean.toFixed(1)} over ${t.examples} examples`,
    );
    if (t.cutoffLen !== undefined) {
      console.log(`cutoff_len ${t.cutoffLen}: ${t.truncated} truncated (${t.truncatedTokens} tokens cut)`);
    }
    console.log(`tokens kept ${t.totalTokens}, trained ${t.trainedTokens}`);
  } else {
    console.log(dim('(give --model to measure token lengths)'));
  }
}
