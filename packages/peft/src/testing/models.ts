// Helpers shared by this package's tests (not part of the public API).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CausalLM,
  createModelConfig,
  initializeModel,
  loadPretrained,
  type ModelConfig,
  type ModelFileSink,
  type ModelFileSource,
  memoryFileSource,
} from '@webtune/nn';
import type { Device, Tensor } from '@webtune/tensors';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '__fixtures__');

/** Golden logits written by tools/golden/peft_adapters.py. */
export interface Golden {
  description: string;
  base?: string;
  input_ids: number[][];
  shape: [number, number, number];
  logits: number[];
  adapted_modules?: string[];
}

export function readGolden(...parts: string[]): Golden {
  return JSON.parse(readFileSync(join(FIXTURES, ...parts, 'golden.json'), 'utf8')) as Golden;
}

/** The files of a fixture folder, in memory. */
export function fixtureSource(...parts: string[]): ModelFileSource {
  const folder = join(FIXTURES, ...parts);
  const names = ['config.json', 'model.safetensors', 'adapter_config.json', 'adapter_model.safetensors'];
  const files: Record<string, Uint8Array> = {};
  for (const name of names) {
    try {
      files[name] = readFileSync(join(folder, name));
    } catch {
      // absent in this folder
    }
  }
  return memoryFileSource(files, folder);
}

/** A base model of the fixtures (tools/golden/peft_adapters.py). */
export async function loadBase(device: Device, name: 'llama' | 'qwen2'): Promise<CausalLM> {
  return (await loadPretrained(device, fixtureSource('base', name))).model;
}

/** An in-memory folder to save into and load back from. */
export function memoryFolder(location = 'memory'): {
  sink: ModelFileSink;
  source: () => ModelFileSource;
  files: Map<string, Uint8Array>;
} {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    sink: {
      async writeFile(name, contents) {
        files.set(name, typeof contents === 'string' ? new TextEncoder().encode(contents) : contents.slice());
      },
    },
    source: () => memoryFileSource(files, location),
  };
}

/** Tiny model shapes of the test table: GQA Llama, Qwen2 (q/k/v bias, tied head), Qwen3 (q/k norms). */
export const TINY_MODELS: Record<string, ModelConfig> = {
  llama: createModelConfig({
    hiddenSize: 16,
    intermediateSize: 24,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    vocabSize: 32,
  }),
  qwen2: createModelConfig({
    architecture: 'Qwen2ForCausalLM',
    hiddenSize: 16,
    intermediateSize: 20,
    numHiddenLayers: 2,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    vocabSize: 24,
    tieWordEmbeddings: true,
  }),
  qwen3: createModelConfig({
    architecture: 'Qwen3ForCausalLM',
    hiddenSize: 16,
    intermediateSize: 24,
    numHiddenLayers: 3,
    numAttentionHeads: 2,
    numKeyValueHeads: 2,
    headDim: 8,
    vocabSize: 28,
    tieWordEmbeddings: true,
  }),
};

/** A tiny model with seeded random weights (std 0.3, so adapters visibly change logits). */
export function tinyModel(device: Device, name: keyof typeof TINY_MODELS, seed = 1): CausalLM {
  return initializeModel(new CausalLM(device, TINY_MODELS[name]), { seed, std: 0.3 });
}

/** Token ids [rows, seq] as an i32 tensor. */
export function ids(device: Device, rows: readonly (readonly number[])[]): Tensor {
  return device.fromArray(rows.flat(), [rows.length, rows[0].length], 'i32');
}

/** Seeded token ids below `vocab`. */
export function randomIds(device: Device, vocab: number, batch = 2, seq = 6, seed = 5): Tensor {
  const values: number[] = [];
  let state = seed;
  for (let i = 0; i < batch * seq; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    values.push(state % vocab);
  }
  return device.fromArray(values, [batch, seq], 'i32');
}

/** Logits of `model` for `input` as a host array (intermediate tensors freed). */
export async function logitsOf(
  model: { forward(ids: Tensor): Tensor },
  input: Tensor,
): Promise<Float32Array> {
  return (await input.device.scope(() => model.forward(input).toArray())) as Float32Array;
}

/** Largest |a - b|. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}
