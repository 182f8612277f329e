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
