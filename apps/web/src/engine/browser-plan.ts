/*
 * The board's runs go through the same planner as `webtune train` and `webtune webui`
 * (@webtune/train's planRun): the page sends LLaMA-Factory keys, this file adds what only the
 * browser knows (the loaded model's location, the picked files, the run's name in private
 * storage) and hands the config to the planner. Nothing about a run is decided here.
 */
import {
  type ChatTemplate,
  memoryFileResolver,
  PromptEncoder,
  parseDatasetInfo,
  prepareDataset,
  type TokenizerLike,
} from '@webtune/data';
import type { TrainingMethod } from '@webtune/peft';
import { encodingOptionsOf, type MethodPlan, planRun, type RawConfig, type RunPlan } from '@webtune/train';

/** What the browser knows that a config file would say. */
export interface BrowserRunContext {
  /** The loaded model's location (a folder name or URL): model_name_or_path when the config has none. */
  location: string;
  /** Names of the picked dataset files: dataset when the config has none. */
  datasets: readonly string[];
  /** The run's folder in the origin-private file system: output_dir when the config has none. */
  runName: string;
}

/** Where the board keeps a run (output_dir of its plan). */
export const BROWSER_OUTPUT_ROOT = 'opfs';

/** The config with the browser's context filled in where it is silent, planned. */
export function planInBrowser(raw: RawConfig, context: BrowserRunContext): RunPlan {
  const config: RawConfig = { ...raw };
  const absent = (key: string) => config[key] === undefined || config[key] === null || config[key] === '';
  if (absent('model_name_or_path')) config.model_name_or_path = context.location;
  if (absent('dataset')) config.dataset = context.datasets.length > 0 ? [...context.datasets] : 'none';
  if (absent('output_dir')) config.output_dir = `${BROWSER_OUTPUT_ROOT}/${context.runName}`;
  return planRun(config);
}

/**
 * The plan's data options applied to the picked files; `template` is the plan's template as the
 * board resolves it (undefined for pt).
 */
export async function prepareBrowserData(
  plan: RunPlan,
  files: Record<string, Blob>,
  tokenizer: TokenizerLike,
  template: ChatTemplate | undefined,
  named: readonly string[] = [],
) {
  const data = plan.data;
  // A picked data folder: datasets by their dataset_info.json names, files opened from the folder.
  const sources =
    named.length > 0
      ? {
          datasets: [...named],
          datasetInfo: parseDatasetInfo(await datasetInfoText(files), 'dataset_info.json'),
          files: memoryFileResolver(files),
        }
      : { datasets: Object.entries(files).map(([name, file]) => ({ name, fileName: name, source: file })) };
  return prepareDataset({
    ...encodingOptionsOf(data),
    ...sources,
    tokenizer,
    template,
    valSize: data.valSize,
    mixStrategy: data.mixStrategy,
    interleaveProbs: data.interleaveProbs,
  });
}

async function datasetInfoText(files: Record<string, Blob>): Promise<string> {
  const file = files['dataset_info.json'];
  if (!file) throw new Error('the data folder has no dataset_info.json at its top');
  return file.text();
}

/** The plan's method in the shape @webtune/peft's memory estimate takes. */
export function trainingMethodOf(method: MethodPlan): TrainingMethod {
  switch (method.type) {
    case 'lora':
      return { type: 'lora', config: method.config };
    case 'adapter':
      return { type: 'bottleneck', config: method.config };
    case 'freeze':
      return { type: 'freeze', options: method.options };
    default:
      return { type: 'full' };
  }
}

/** The board's template: the one named, else LLaMA-Factory's choice (the chat_template parsed, else empty). */
export function boardTemplate(
  tokenizer: TokenizerLike & { chatTemplate?: string | null },
  name: string | undefined,
): ChatTemplate {
  // The one prompt encoder of @webtune/data, as the CLI: no name is LLaMA-Factory's choice.
  return new PromptEncoder(tokenizer, { template: name === '' ? undefined : name }).template;
}
