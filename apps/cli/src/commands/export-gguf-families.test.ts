/**
 * llama.cpp judges the families' GGUF export: the tiny Gemma 2, Gemma 3, Phi-3, Phi-4-mini and
 * SmolLM3 models of tools/golden/transformers_families.py, written by `webtune export --gguf F16`,
 * continue a prompt in llama.cpp (node-llama-cpp's CPU build) token for token as webtune does on
 * the same file, past the sliding windows.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '@webtune/gguf';
import { generate } from '@webtune/nn';
import { loadGgufFile } from '@webtune/nn/node';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { familyModelFolder } from '../testing/family-model.js';
import { webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const PROMPT = [1, 17, 42, 5];
const NEW_TOKENS = 40;

/**
 * llama.cpp picks Phi-3's LongRoPE table by its context size (node-llama-cpp makes it at least
 * 256), not by sequence length as Transformers does: a 4096-token original context, as
 * Phi-3-mini-4k has, keeps both on the short factors.
 */
const shortContextOnly = (config: Record<string, unknown>) => {
  config.max_position_embeddings = 4096;
  config.original_max_position_embeddings = 4096;
  const rope = config.rope_parameters as Record<string, unknown>;
  rope.original_max_position_embeddings = 4096;
};

/**
 * The models, with what each file must say. Gemma 2 and 3 keep every feature of the Transformers
 * fixture (sliding window 4 on alternate layers, soft-caps, query_pre_attn_scalar folded into the
 * queries, Gemma 3's local base and linear global scaling); their embeddings are small (std 0.05)
 * so that the tied head does not just repeat one token. Phi-3's LongRoPE models get an original
 * context as long as their context (see shortContextOnly), and Phi-3 no sliding window; SmolLM3 gets llama.cpp's NoPE pattern.
 */
const FAMILIES: {
  name: string;
  architecture: string;
  embeddingStd?: number;
  edit?: (config: Record<string, unknown>) => void;
}[] = [
  { name: 'gemma2', architecture: 'gemma2', embeddingStd: 0.05 },
  { name: 'gemma3', architecture: 'gemma3', embeddingStd: 0.05 },
  {
    name: 'phi3',
    architecture: 'phi3',
    edit: (config) => {
      shortContextOnly(config);
      // llama.cpp turns Phi-3's sliding window off ("Phi SWA is currently disabled"): the file
      // keeps the key, but the two only agree while the sequence fits the window.
      config.sliding_window = null;
    },
  },
  { name: 'phi4-mini', architecture: 'phi3', edit: shortContextOnly },
  {
    name: 'smollm3',
    architecture: 'smollm3',
    edit: (config) => {
      config.no_rope_layers = [1, 1, 1, 0];
    },
  },
];

describe.skipIf(!requireFixtures(STORIES))('GGUF export of the families judged by llama.cpp', () => {
  let folder: string;
  let device: Device;
  let llama: Llama;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-gguf-families-'));
    device = await createDevice();
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  }, 120_000);

  afterAll(async () => {
    await llama?.dispose();
    device?.destroy();
    if (!process.env.WEBTUNE_KEEP_TEST_FILES) rmSync(folder, { recursive: true, force: true });
  });

  async function llamaCppGreedy(modelPath: string): Promise<number[]> {
    const model = await llama.loadModel({ modelPath });
    try {
      const context = await model.createContext({ contextSize: 64, threads: 1, batchSize: 64 });
      const out: number[] = [];
      for await (const token of context.getSequence().evaluate(PROMPT as never, { temperature: 0 })) {
        out.push(token as number);
        if (out.length >= NEW_TOKENS) break;
      }
      await context.dispose();
      return out;
    } finally {
      await model.dispose();
    }
  }

  for (const family of FAMILIES) {
    it(`${family.name}: F16 export, llama.cpp continues token for token as webtune`, async () => {
      const model = familyModelFolder(
        family.name,
        // general.name is the folder's name; llama.cpp expects Phi-3's own special tokens in a
        // model whose name says phi3, which a 512-token vocabulary has not.
        join(folder, `tiny-model-${FAMILIES.indexOf(family)}`),
        fixturePath(STORIES),
        family,
      );
      const out = join(folder, `${family.name}-gguf`);
      const result = await webtune(['export', '--model', model, '--out', out, '--gguf', 'F16']);
      expect(result.code, result.stderr).toBe(0);
      const file = join(out, readdirSync(out).find((name) => name.endsWith('.gguf'))!);
      const gguf = await readGguf(new Uint8Array(await readFile(file)));
      expect(gguf.string('general.architecture')).toBe(family.architecture);
      const loaded = await loadGgufFile(device, file);
      let ours: number[];
      try {
        [{ tokens: ours }] = await generate(loaded.model, loaded.tokenizer!, [PROMPT], {
          maxNewTokens: NEW_TOKENS,
          stopTokens: [],
        });
      } finally {
        loaded.model.dispose();
      }
      const theirs = await llamaCppGreedy(file);
      console.log(`${family.name}: webtune ${ours.join(' ')}\n${family.name}: llama.cpp ${theirs.join(' ')}`);
      expect(new Set(ours).size).toBeGreaterThan(8); // a continuation that wanders, not one token
      expect(theirs).toEqual(ours);
    }, 120_000);
  }
});
