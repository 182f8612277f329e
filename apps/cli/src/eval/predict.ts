/**
 * `webtune eval predict`: answers every prompt of a test set (SFT rows: the last assistant turn is
 * the reference), writes `{"prompt", "predict", "label"}` JSON Lines (LLaMA-Factory's
 * generated_predictions.jsonl) and prints BLEU-4 and ROUGE-1/2/L.
 */
import { existsSync, statSync } from 'node:fs';
import { NoValidRowsError } from '@webtune/data';
import { loadExamplesFromDirectory } from '@webtune/data/node';
import { type PredictResult, predict, predictExamplesFrom, type Segmentation } from '@webtune/eval';
import { writePredictions } from '@webtune/eval/node';
import { numberOption, optional, parseCommandLine, required } from '../args.js';
import { resolveDatasets } from '../datasets.js';
import { loadModel, openDevice } from '../model-loading.js';
import { promptEncoderFor } from '../prompting.js';
import { formatDuration, ProgressBar, table, UsageError } from '../ui.js';

const SEGMENTATIONS: Segmentation[] = ['characters', 'words'];

export async function predictCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    dataset: { type: 'string' },
    'dataset-dir': { type: 'string' },
    formatting: { type: 'string' },
    template: { type: 'string' },
    'max-samples': { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'batch-size': { type: 'string' },
    segmentation: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
  });
  const modelName = required(values, 'model');
  const datasetNames = required(values, 'dataset');
  const out = required(values, 'out');
  if (existsSync(out) && statSync(out).isDirectory()) {
    throw new UsageError(`--out "${out}" is a folder; name the .jsonl file to write`, 1);
  }
  const maxSamples = numberOption(values, 'max-samples', { integer: true, min: 1 });
  const maxNewTokens = numberOption(values, 'max-new-tokens', { integer: true, min: 1 }) ?? 128;
  const batchSize = numberOption(values, 'batch-size', { integer: true, min: 1 }) ?? 8;
  const segmentation = (optional(values, 'segmentation') ?? 'characters') as Segmentation;
  if (!SEGMENTATIONS.includes(segmentation)) {
    throw new UsageError(`--segmentation must be characters or words, got "${segmentation}"`);
  }
  const json = Boolean(values.json);
  const { datasetDir, datasets } = resolveDatasets(datasetNames, {
    datasetDir: optional(values, 'dataset-dir'),
    formatting: optional(values, 'formatting'),
  });
  let loadedExamples: Awaited<ReturnType<typeof loadExamplesFromDirectory>>;
  try {
    loadedExamples = await loadExamplesFromDirectory({ datasetDir, datasets, stage: 'sft', maxSamples });
  } catch (error) {
    if (error instanceof NoValidRowsError) {
      throw new UsageError(
        `no row of ${datasetNames} is a usable test example (${error.message}); webtune data validate ${datasetNames} shows why`,
        1,
      );
    }
    throw error;
  }
  const supervised = [...loadedExamples.train, ...loadedExamples.validation].filter(
    (example) => example.kind === 'supervised',
  );
  const examples = predictExamplesFrom(supervised);
  const rejected = loadedExamples.report.rejected.length;
  if (rejected > 0 && !json) {
    console.error(
      `note: ${rejected} row${rejected === 1 ? '' : 's'} rejected (webtune data validate shows why)`,
    );
  }

  const device = await openDevice();
  let result: PredictResult;
  try {
    const loaded = await loadModel(device, modelName, { adapter: optional(values, 'adapter'), quiet: json });
    const prompts = promptEncoderFor(loaded.tokenizer, { template: optional(values, 'template') });
    const bar = json ? null : new ProgressBar('predicting');
    try {
      result = await predict(loaded.model, loaded.tokenizer, examples, {
        prompts,
        stopStrings: prompts.stopStrings(),
        maxNewTokens,
        batchSize,
        metrics: { segmentation },
        onProgress: (progress) => bar?.update(progress.done, progress.total, 'samples'),
      });
    } finally {
      bar?.done();
      loaded.model.dispose();
    }
  } finally {
    device.destroy();
  }
  await writePredictions(out, result.records);
  const { metrics, timing } = result;
  if (json) {
    console.log(
      JSON.stringify({
        'bleu-4': metrics['bleu-4'],
        'rouge-1': metrics['rouge-1'],
        'rouge-2': metrics['rouge-2'],
        'rouge-l': metrics['rouge-l'],
        samples: metrics.samples,
        out,
        seconds: timing.seconds,
        samplesPerSecond: timing.samplesPerSecond,
        tokensPerSecond: timing.tokensPerSecond,
      }),
    );
    return 0;
  }
  console.log(
    table([
      ['metric', 'score'],
      ...(['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const).map((name) => [
        name,
        metrics[name].toFixed(2),
      ]),
    ]),
  );
  console.log(
    `${metrics.samples} samples in ${formatDuration(timing.seconds)} ` +
      `(${timing.samplesPerSecond.toFixed(2)} samples/s, ${timing.tokensPerSecond.toFixed(1)} tokens/s); ` +
      `scores are means x 100 (BLEU-4 with NIST smoothing, ROUGE F1, ${segmentation})`,
  );
  console.log(`wrote ${out}`);
  return 0;
}
