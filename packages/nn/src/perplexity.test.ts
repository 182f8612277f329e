import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CausalLM } from './models/llama.js';
import { loadModelDirectory } from './node.js';
import { perplexity, perplexityOfIds } from './perplexity.js';
import { FIXTURES } from './testing/fixtures.js';

const HF = 'models/stories260K-hf';

interface Golden {
  ids: number[];
  cases: {
    window: number;
    stride: number;
    meanLoss: number;
    perplexity: number;
    tokens: number;
    windows: number;
  }[];
}

describe.skipIf(!requireFixtures(HF))('perplexity on stories260K', () => {
  let device: Device;
  let model: CausalLM;
  let tokenizer: Tokenizer;
  const golden: Golden = JSON.parse(readFileSync(join(FIXTURES, 'stories260k-perplexity.json'), 'utf8'));

  beforeAll(async () => {
    device = await createDevice();
    ({ model, tokenizer } = (await loadModelDirectory(device, fixturePath(HF))) as {
      model: CausalLM;
      tokenizer: Tokenizer;
    });
  });
  afterAll(() => {
    model?.dispose();
    device?.destroy();
  });

  for (const golden_case of golden.cases) {
    it(`matches the PyTorch golden with window ${golden_case.window}, stride ${golden_case.stride}`, async () => {
      const result = await perplexityOfIds(model, golden.ids, {
        window: golden_case.window,
        stride: golden_case.stride,
      });
      expect(result.tokens).toBe(golden.ids.length - 1);
      expect(result.windows).toBe(golden_case.windows);
      expect(Math.abs(result.meanLoss - golden_case.meanLoss)).toBeLessThan(1e-4);
      expect(result.perplexity).toBeCloseTo(Math.exp(result.meanLoss), 10);
    });
  }

  it('tokenizes a text whole with BOS and scores every token after the first', async () => {
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside.';
    const ids = tokenizer.encode(text);
    expect(ids[0]).toBe(1);
    const fromText = await perplexity(model, tokenizer, text);
    const fromIds = await perplexityOfIds(model, ids);
    expect(fromText).toEqual(fromIds);
    expect(fromText.tokens).toBe(ids.length - 1);
    // A text the model knows well scores far below a shuffled one.
    const shuffled = await perplexityOfIds(model, [1, ...ids.slice(1).reverse()]);
    expect(fromText.perplexity).toBeLessThan(shuffled.perplexity / 4);
  });

  it('rejects a stride that leaves tokens without context', async () => {
    await expect(perplexityOfIds(model, golden.ids, { window: 32, stride: 32 })).rejects.toThrow(/stride/);
    await expect(perplexityOfIds(model, [1])).rejects.toThrow(/at least 2 tokens/);
  });
});
