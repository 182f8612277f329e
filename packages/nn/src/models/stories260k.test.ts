import { readFileSync } from 'node:fs';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../generation/generate.js';
import { loadLlama2cFile, loadModelDirectory } from '../node.js';
import { maxAbsDifference } from '../testing/fixtures.js';
import type { CausalLM } from './llama.js';

const HF = 'models/stories260K-hf';
const LLAMA2C = 'models/stories260K-llama2c';

interface Golden {
  bos_id: number;
  greedy_ids: number[];
  logits_pos0: number[];
}

describe.skipIf(!requireFixtures(HF, LLAMA2C))('stories260K in both layouts', () => {
  let device: Device;
  let golden: Golden;
  let expectedText: string;
  const layouts: Record<string, { model: CausalLM; tokenizer: Tokenizer }> = {};

  beforeAll(async () => {
    device = await createDevice();
    golden = JSON.parse(readFileSync(fixturePath(LLAMA2C, 'golden_greedy_ids_and_logits.json'), 'utf8'));
    expectedText = readFileSync(fixturePath(LLAMA2C, 'expected_greedy_200.txt'), 'utf8');
    const hf = await loadModelDirectory(device, fixturePath(HF));
    layouts.hf = { model: hf.model, tokenizer: hf.tokenizer! };
    const llama2c = await loadLlama2cFile(device, fixturePath(LLAMA2C, 'stories260K.bin'), {
      tokenizerPath: fixturePath(LLAMA2C, 'tok512.bin'),
    });
    layouts.llama2c = { model: llama2c.model, tokenizer: llama2c.tokenizer! };
  });

  afterAll(() => {
    for (const { model } of Object.values(layouts)) model.dispose();
    device?.destroy();
  });

  it('loads the same weights from both files (llama2.c q/k rows permuted to rotate-half)', async () => {
    const hf = new Map(layouts.hf.model.namedParameters());
    const llama2c = new Map(layouts.llama2c.model.namedParameters());
    expect([...llama2c.keys()].sort()).toEqual([...hf.keys()].sort());
    for (const [name, tensor] of hf) {
      const difference = maxAbsDifference(await tensor.toArray(), await llama2c.get(name)!.toArray());
      expect(difference, name).toBe(0);
    }
    expect(layouts.llama2c.model.config).toMatchObject({
      hiddenSize: 64,
      numKeyValueHeads: 4,
      tieWordEmbeddings: true,
    });
  });

  for (const layout of ['hf', 'llama2c']) {
    it(`${layout}: logits after BOS match the golden values (max abs error < 1e-4)`, async () => {
      const { model } = layouts[layout];
      const logits = await device.scope(async () => {
        const ids = device.fromArray([golden.bos_id], [1, 1], 'i32');
        return model.forward(ids).toArray();
      });
      expect(logits.length).toBe(512);
      expect(maxAbsDifference(logits, golden.logits_pos0)).toBeLessThan(1e-4);
    });

    it(`${layout}: greedy-decodes 200 tokens from BOS to the upstream text`, async () => {
      const { model, tokenizer } = layouts[layout];
      const streamed: string[] = [];
      const [result] = await generate(model, tokenizer, [[golden.bos_id]], {
        maxNewTokens: 200,
        stopTokens: [],
        onToken: (event) => streamed.push(event.text),
      });
      expect(result.tokens).toEqual(golden.greedy_ids);
      expect(result.finishReason).toBe('length');
      expect(result.text).toBe(expectedText);
      expect(streamed.join('')).toBe(expectedText);
    });
  }

  it('encodes a prompt with BOS the same way in both layouts and continues it identically', async () => {
    const prompt = 'Once upon a time';
    expect(layouts.hf.tokenizer.encode(prompt)).toEqual([1, 403, 407, 261, 378]);
    expect(layouts.llama2c.tokenizer.encode(prompt)).toEqual([1, 403, 407, 261, 378]);
    const [hf] = await generate(layouts.hf.model, layouts.hf.tokenizer, prompt, { maxNewTokens: 12 });
    const [llama2c] = await generate(layouts.llama2c.model, layouts.llama2c.tokenizer, prompt, {
      maxNewTokens: 12,
    });
    expect(hf.tokens).toEqual(golden.greedy_ids.slice(4, 16));
    expect(llama2c.tokens).toEqual(hf.tokens);
    expect(hf.text).toBe(llama2c.text);
  });
});
