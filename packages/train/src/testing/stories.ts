import { prepareDatasetFromDirectory } from '@webtune/data/node';
import type { CausalLM } from '@webtune/nn';
import { generate } from '@webtune/nn';
import { loadModelDirectory } from '@webtune/nn/node';
import type { Device } from '@webtune/tensors';
import { fixturePath } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import type { PreferenceRow, SupervisedRow } from '../data/rows.js';

export const STORIES = 'models/stories260K-hf';
export const DATASETS = 'datasets/llamafactory';

/** stories260K (Hugging Face layout) and its tokenizer. */
export async function loadStories(device: Device): Promise<{ model: CausalLM; tokenizer: Tokenizer }> {
  const { model, tokenizer } = await loadModelDirectory(device, fixturePath(STORIES));
  if (!tokenizer) throw new Error('stories260K-hf has no tokenizer');
  return { model, tokenizer };
}

/** The filled-in identity: a made-up name no TinyStories model says by itself. */
export const IDENTITY = { name: 'Zorbik', author: 'Quenta Labs' };

/** identity.json with the placeholders filled, rendered with the `default` template. */
export async function identityRows(tokenizer: Tokenizer, options: { rows: number; cutoffLen: number }) {
  const prepared = await prepareDatasetFromDirectory({
    stage: 'sft',
    datasets: ['identity'],
    datasetDir: fixturePath(DATASETS),
    tokenizer,
    template: 'default',
    cutoffLen: options.cutoffLen,
    placeholders: IDENTITY,
    maxSamples: options.rows,
  });
  return prepared.train as unknown as (SupervisedRow & { location: { row: number } })[];
}

/** The first `count` pairs of dpo_en_demo.json, cut to `cutoffLen` tokens per answer. */
export async function preferencePairs(tokenizer: Tokenizer, options: { pairs: number; cutoffLen: number }) {
  const prepared = await prepareDatasetFromDirectory({
    stage: 'dpo',
    datasets: ['dpo_en_demo'],
    datasetDir: fixturePath(DATASETS),
    tokenizer,
    template: 'default',
    cutoffLen: options.cutoffLen,
    maxSamples: options.pairs,
  });
  return prepared.train as unknown as PreferenceRow[];
}

/** The prompt of a trained row: its tokens up to the first trained label, exactly as trained. */
export function promptOf(row: SupervisedRow): number[] {
  const labels = Array.from(row.labels);
  return Array.from(row.inputIds).slice(
    0,
    labels.findIndex((label) => label !== -100),
  );
}

/** The model's greedy continuation of `prompt` (token ids), as text. */
export async function greedyAnswer(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompt: number[],
  maxNewTokens = 24,
) {
  const [result] = await generate(model, tokenizer, [prompt], { maxNewTokens });
  return result.text;
}
