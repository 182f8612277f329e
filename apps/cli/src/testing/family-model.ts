/**
 * Model folders of the families for llama.cpp: the config of a tiny Transformers family model
 * (packages/nn's fixtures, made by tools/golden/transformers_families.py) with stories260K's
 * tokenizer, so that `webtune export --gguf` writes a file llama.cpp loads. llama.cpp needs every
 * byte token of a SentencePiece vocabulary (node-llama-cpp tokenizes text on load), so the
 * vocabulary grows from 64 to stories260K's 512 and the weights are new seeded random ones of the
 * fixture's shapes, at the golden script's scales.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsBytes, writeSafetensors } from '@webtune/safetensors';
import { REPO_ROOT } from './run-cli.js';

export const FAMILY_FIXTURES = join(REPO_ROOT, 'packages', 'nn', 'src', '__fixtures__', 'transformers');

/** A seeded normal sampler (mulberry32 + Box-Muller): the same numbers on every machine. */
function normalSampler(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * Writes `folder`: config.json (the fixture's, vocabulary 512, then `edit`), model.safetensors
 * (float32, the fixture's tensor names and shapes with 512 embedding/head rows; matrices
 * N(0, std), norms 1 + N(0, 0.1), Gemma's (1 + w) norms N(0, 0.1)) and stories260K's tokenizer
 * files. Returns the folder.
 */
export function familyModelFolder(
  name: string,
  folder: string,
  storiesFolder: string,
  options: {
    std?: number;
    /** Standard deviation of the embedding (and head) rows; default std. */
    embeddingStd?: number;
    seed?: number;
    edit?: (config: Record<string, unknown>) => void;
  } = {},
): string {
  mkdirSync(folder, { recursive: true });
  const source = join(FAMILY_FIXTURES, name);
  const config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8'));
  const vocab = 512;
  config.vocab_size = vocab;
  config.torch_dtype = 'float32';
  options.edit?.(config);
  writeFileSync(join(folder, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const gemma = String(config.model_type).startsWith('gemma');
  const normal = normalSampler(options.seed ?? 1234);
  const std = options.std ?? 0.3;
  const embeddingStd = options.embeddingStd ?? std;
  const { tensors } = readSafetensorsBytes(new Uint8Array(readFileSync(join(source, 'model.safetensors'))));
  const written = [...tensors]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((tensor) => {
      const isVocab = /^(model\.embed_tokens|lm_head)\.weight$/.test(tensor.name);
      const shape = tensor.shape.map((size, axis) => (isVocab && axis === 0 ? vocab : size));
      const data = new Float32Array(shape.reduce((product, size) => product * size, 1));
      const isNorm = /norm\.weight$/.test(tensor.name);
      for (let i = 0; i < data.length; i++) {
        data[i] = isNorm ? (gemma ? 0 : 1) + 0.1 * normal() : (isVocab ? embeddingStd : std) * normal();
      }
      return { name: tensor.name, dtype: 'F32' as const, shape, data };
    });
  writeFileSync(join(folder, 'model.safetensors'), writeSafetensors(written, { format: 'pt' }));
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(join(storiesFolder, file), join(folder, file));
  }
  return folder;
}
