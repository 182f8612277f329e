// Helpers shared by this package's tests (not part of the public API).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Device } from '@webtune/tensors';
import { loadPretrained, memoryFileSource, type PretrainedModel } from '../loading/pretrained.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '__fixtures__');

export interface ArchitectureGolden {
  description: string;
  weights: string;
  input_ids: number[][];
  shape: [number, number, number];
  logits: number[];
}

/** Names of the architecture fixture folders (tools/golden/nn_architectures.py). */
export const ARCHITECTURE_FIXTURES = [
  'llama',
  'llama3-rope',
  'llama-linear-rope',
  'llama-dynamic-rope',
  'llama-yarn-rope',
  'mistral',
  'qwen2',
  'qwen3',
] as const;

/** Loads one architecture fixture (config + weights, possibly shared with another folder) and its golden logits. */
export async function loadArchitectureFixture(
  device: Device,
  name: string,
): Promise<PretrainedModel & { golden: ArchitectureGolden }> {
  const folder = join(FIXTURES, 'architectures', name);
  const golden = JSON.parse(readFileSync(join(folder, 'golden.json'), 'utf8')) as ArchitectureGolden;
  const source = memoryFileSource(
    {
      'config.json': readFileSync(join(folder, 'config.json')),
      'model.safetensors': readFileSync(join(folder, golden.weights)),
    },
    folder,
  );
  return { ...(await loadPretrained(device, source)), golden };
}

/** Goldens made by Transformers itself (tools/golden/transformers_families.py). */
export interface TransformersGolden extends ArchitectureGolden {
  /** -log p(token t + 1) at each position t < seq - 1, per row, float64. */
  token_losses: number[];
  mean_loss: number;
  greedy: { prompt: number[]; tokens: number[]; smallest_top2_gap: number; generate_tokens?: number[] };
  /** LongRoPE models: logits of a pass over the first `length` tokens (short factors). */
  short_context?: { length: number; logits: number[] };
}

/** Folders under __fixtures__/transformers/. */
export const TRANSFORMERS_FIXTURES = [
  'llama',
  'mistral',
  'qwen2',
  'qwen3',
  'gemma2',
  'gemma3',
  'phi3',
  'phi4-mini',
  'smollm3',
] as const;

/** The files of one Transformers fixture folder. */
export function transformersFixtureFiles(name: string): Record<string, Uint8Array> {
  const folder = join(FIXTURES, 'transformers', name);
  return {
    'config.json': readFileSync(join(folder, 'config.json')),
    'model.safetensors': readFileSync(join(folder, 'model.safetensors')),
  };
}

/** Loads one Transformers fixture and its golden. */
export async function loadTransformersFixture(
  device: Device,
  name: string,
): Promise<PretrainedModel & { golden: TransformersGolden }> {
  const folder = join(FIXTURES, 'transformers', name);
  const golden = JSON.parse(readFileSync(join(folder, 'golden.json'), 'utf8')) as TransformersGolden;
  const source = memoryFileSource(transformersFixtureFiles(name), folder);
  return { ...(await loadPretrained(device, source)), golden };
}

/** Largest |a - b| over two arrays of equal length. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}
