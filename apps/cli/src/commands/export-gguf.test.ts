/**
 * llama.cpp is the judge: GGUF files written by `webtune export --gguf` load in llama.cpp
 * (node-llama-cpp's prebuilt CPU build) and continue a prompt as webtune does.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '@webtune/gguf';
import { generate, perplexityOfIds } from '@webtune/nn';
import { directorySource, loadGgufFile } from '@webtune/nn/node';
import { loadAdapter } from '@webtune/peft';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAdapter } from '../testing/make-adapter.js';
import { REPO_ROOT, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const PROMPT = 'Once upon a time';
const NEW_TOKENS = 40;
const TEXT =
  'Once upon a time, there was a little girl named Lily. She liked to play in the park with her friends. ' +
  'One day, she saw a big red ball under a tree. She ran to the ball and said, "Look, I found a ball!" ' +
  'Her friend Tom came and they played together until the sun went down. They were very happy.';

describe.skipIf(!requireFixtures(STORIES))('GGUF export judged by llama.cpp (stories260K)', () => {
  const hf = fixturePath(STORIES);
  let folder: string;
  let device: Device;
  let llama: Llama;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'webtune-gguf-'));
    await makeAdapter(hf, join(folder, 'adapter'));
    const exports: [string, string[], string][] = [
      ['f16', ['--gguf', 'F16'], 'stories260K-hf-f16.gguf'],
      ['q8_0', ['--gguf', 'Q8_0'], 'stories260K-hf-q8_0.gguf'],
      ['merged', ['--gguf', 'F16', '--adapter', join(folder, 'adapter')], 'stories260K-hf-f16.gguf'],
      [
        'split',
        ['--gguf', 'F16', '--adapter', join(folder, 'adapter'), '--gguf-adapter'],
        'stories260K-hf-f16.gguf',
      ],
    ];
    for (const [name, args, file] of exports) {
      const result = await webtune(['export', '--model', hf, '--out', join(folder, name), ...args]);
      expect(result.code, result.stderr).toBe(0);
      files[name] = join(folder, name, file);
    }
    files.lora = join(folder, 'split', 'stories260K-hf-lora.gguf');
    device = await createDevice();
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  }, 240_000);

  afterAll(async () => {
    await llama?.dispose();
    device?.destroy();
    rmSync(folder, { recursive: true, force: true });
  });

  /** llama.cpp's greedy continuation of `ids`, and its tokenization of the prompt. */
  async function llamaCppGreedy(modelPath: string, ids: number[], lora?: string) {
    const model: LlamaModel = await llama.loadModel({ modelPath });
    try {
      const context = await model.createContext({
        contextSize: 256,
        threads: 1,
        batchSize: 64,
        lora: lora ? { adapters: [{ filePath: lora }] } : undefined,
      });
      const out: number[] = [];
      for await (const token of context.getSequence().evaluate(ids as never, { temperature: 0 })) {
        out.push(token as number);
        if (out.length >= NEW_TOKENS) break;
      }
      const tokenized = model.tokenize(PROMPT) as number[];
      await context.dispose();
      return { out, tokenized };
    } finally {
      await model.dispose();
    }
  }

  async function webtuneGreedy(loaded: Awaited<ReturnType<typeof loadGgufFile>>, peft = false) {
    const ids = loaded.tokenizer!.encode(PROMPT);
    if (peft) (await loadAdapter(loaded.model, directorySource(join(folder, 'adapter')))).eval();
    const [result] = await generate(loaded.model, loaded.tokenizer!, [ids], {
      maxNewTokens: NEW_TOKENS,
      stopTokens: [],
    });
    return { ids, out: result.tokens };
  }

  it('F16: the file carries the tokenizer and llama.cpp continues the prompt token for token as webtune', async () => {
    const file = await readGguf(new Uint8Array(readFileSync(files.f16)));
    expect(file.string('general.architecture')).toBe('llama');
    expect(file.string('tokenizer.ggml.model')).toBe('llama');
    expect(file.number('tokenizer.ggml.bos_token_id')).toBe(1);
    const loaded = await loadGgufFile(device, files.f16);
    try {
      const ours = await webtuneGreedy(loaded);
      const theirs = await llamaCppGreedy(files.f16, ours.ids);
      expect([1, ...theirs.tokenized]).toEqual(ours.ids);
      expect(theirs.out).toEqual(ours.out);
    } finally {
      loaded.model.dispose();
    }
  }, 120_000);

  it('a LoRA-adapted model merged into F16: llama.cpp continues as webtune does on the same file', async () => {
    const merged = await loadGgufFile(device, files.merged);
    try {
      const ours = await webtuneGreedy(merged);
      const theirs = await llamaCppGreedy(files.merged, ours.ids);
      expect(theirs.out).toEqual(ours.out);
      const plain = await llamaCppGreedy(files.f16, ours.ids);
      expect(plain.out).not.toEqual(ours.out); // the merged adapter changes the continuation
    } finally {
      merged.model.dispose();
    }
  }, 120_000);

  it('base F16 + the GGUF LoRA adapter (llama.cpp --lora) continues as webtune with the PEFT adapter', async () => {
    const adapter = await readGguf(new Uint8Array(readFileSync(files.lora)));
    expect(adapter.string('general.type')).toBe('adapter');
    expect(adapter.string('adapter.type')).toBe('lora');
    expect(adapter.number('adapter.lora.alpha')).toBe(64);
    expect(adapter.has('blk.0.attn_q.weight.lora_a')).toBe(true);
    const loaded = await loadGgufFile(device, files.split);
    try {
      const ours = await webtuneGreedy(loaded, true);
      const theirs = await llamaCppGreedy(files.split, ours.ids, files.lora);
      expect(theirs.out).toEqual(ours.out);
    } finally {
      loaded.model.dispose();
    }
    expect(readFileSync(join(folder, 'split', 'Modelfile'), 'utf8')).toBe(
      'FROM ./stories260K-hf-f16.gguf\nADAPTER ./stories260K-hf-lora.gguf\nPARAMETER stop "</s>"\n',
    );
  }, 120_000);

  it('Q8_0: the first 20 tokens agree and the perplexities are within 1%', async () => {
    const loaded = await loadGgufFile(device, files.q8_0);
    try {
      const ours = await webtuneGreedy(loaded);
      const theirs = await llamaCppGreedy(files.q8_0, ours.ids);
      expect(theirs.out.slice(0, 20)).toEqual(ours.out.slice(0, 20));
      const ids = loaded.tokenizer!.encode(TEXT);
      const webtunePerplexity = (await perplexityOfIds(loaded.model, ids)).perplexity;
      const llamaCppPerplexity = await llamaCppPerplexityOf(files.q8_0, ids);
      console.log(
        `Q8_0 perplexity: webtune ${webtunePerplexity.toFixed(4)}, llama.cpp ${llamaCppPerplexity.toFixed(4)}`,
      );
      expect(Math.abs(llamaCppPerplexity / webtunePerplexity - 1)).toBeLessThan(0.01);
    } finally {
      loaded.model.dispose();
    }
  }, 120_000);

  it('LoRA trains on the Q8_0 GGUF base (kept packed) and saves a PEFT adapter with Hugging Face names', async () => {
    const config = join(folder, 'train.yaml');
    const out = join(folder, 'lora-on-gguf');
    writeFileSync(
      config,
      [
        `model_name_or_path: ${files.q8_0}`,
        'stage: sft',
        'finetuning_type: lora',
        'lora_rank: 4',
        'lora_target: all',
        'dataset: quickstart_facts',
        `dataset_dir: ${join(REPO_ROOT, 'examples', 'quickstart', 'data')}`,
        'template: default',
        'cutoff_len: 32',
        `output_dir: ${out}`,
        'per_device_train_batch_size: 4',
        'max_steps: 2',
        'learning_rate: 1.0e-2',
      ].join('\n'),
    );
    const result = await webtune(['train', config]);
    expect(result.code, result.stderr).toBe(0);
    const names = Object.keys(
      JSON.parse(
        new TextDecoder().decode(
          readFileSync(join(out, 'adapter_model.safetensors')).subarray(
            8,
            8 + Number(readFileSync(join(out, 'adapter_model.safetensors')).readBigUInt64LE(0)),
          ),
        ),
      ),
    );
    expect(names).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    // The same adapter applies to the Hugging Face model the GGUF came from.
    const generated = await webtune([
      'generate',
      '--model',
      hf,
      '--adapter',
      out,
      '--prompt',
      PROMPT,
      '--max-new-tokens',
      '4',
    ]);
    expect(generated.code, generated.stderr).toBe(0);
  }, 120_000);

  /** exp(mean -log p) of each token after the first, from llama.cpp's next-token probabilities. */
  async function llamaCppPerplexityOf(modelPath: string, ids: number[]): Promise<number> {
    const model = await llama.loadModel({ modelPath });
    try {
      const context = await model.createContext({ contextSize: 256, threads: 1, batchSize: 256 });
      const input = ids.map((id, index) =>
        index < ids.length - 1
          ? ([
              id,
              {
                generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } },
              },
            ] as const)
          : id,
      );
      const results = await context.getSequence().controlledEvaluate(input as never);
      let loss = 0;
      for (let index = 0; index < ids.length - 1; index++) {
        const probabilities = results[index]?.next?.probabilities;
        if (!probabilities) throw new Error(`llama.cpp returned no probabilities at position ${index}`);
        const total = [...probabilities.values()].reduce((sum, p) => sum + p, 0);
        expect(total).toBeCloseTo(1, 3);
        loss -= Math.log(probabilities.get(ids[index + 1] as never) ?? 0);
      }
      await context.dispose();
      return Math.exp(loss / (ids.length - 1));
    } finally {
      await model.dispose();
    }
  }
});
