import { readFileSync } from 'node:fs';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CausalLM } from '../models/llama.js';
import { loadModelDirectory } from '../node.js';
import { generate, generateWithTimings, type TokenEvent } from './generate.js';
import { applyRepetitionPenalty, argmaxOf } from './sampling.js';

const HF = 'models/stories260K-hf';

describe.skipIf(!requireFixtures(HF))('generate on stories260K', () => {
  let device: Device;
  let model: CausalLM;
  let tokenizer: Tokenizer;
  let greedy: number[];

  beforeAll(async () => {
    device = await createDevice();
    ({ model, tokenizer } = (await loadModelDirectory(device, fixturePath(HF))) as {
      model: CausalLM;
      tokenizer: Tokenizer;
    });
    greedy = JSON.parse(
      readFileSync(fixturePath('models/stories260K-llama2c/golden_greedy_ids_and_logits.json'), 'utf8'),
    ).greedy_ids;
  });
  afterAll(() => {
    model?.dispose();
    device?.destroy();
  });

  it('stops at maxNewTokens and at a stop token (which it leaves out)', async () => {
    const [short] = await generate(model, tokenizer, [[1]], { maxNewTokens: 7 });
    expect(short.tokens).toEqual(greedy.slice(0, 7));
    expect(short.finishReason).toBe('length');
    const stop = greedy[5];
    const first = greedy.indexOf(stop);
    const [stopped] = await generate(model, tokenizer, [[1]], { maxNewTokens: 50, stopTokens: [stop] });
    expect(stopped.tokens).toEqual(greedy.slice(0, first));
    expect(stopped.finishReason).toBe('stop-token');
    expect(stopped.stoppedBy).toBe(stop);
    expect(stopped.promptTokens).toEqual([1]);
  });

  it('cuts at a stop string, and streams nothing of it', async () => {
    const events: TokenEvent[] = [];
    const [result] = await generate(model, tokenizer, [[1]], {
      maxNewTokens: 60,
      stopStrings: ['Lily', 'never appears'],
      onToken: (event) => events.push(event),
    });
    expect(result.text).toBe('Once upon a time, there was a little girl named ');
    expect(result.finishReason).toBe('stop-string');
    expect(result.stoppedBy).toBe('Lily');
    expect(events.map((e) => e.text).join('')).toBe(result.text);
    expect(events.at(-1)?.finishReason).toBe('stop-string');
    expect(events.slice(0, -1).every((e) => e.finishReason === undefined)).toBe(true);
    expect(events.every((e) => !e.text.includes('L'))).toBe(true);
    expect(events.map((e) => e.index)).toEqual(events.map((_, i) => i));
  });

  it('batches prompts of different lengths (left padding) with the results of each alone', async () => {
    const prompts = ['Once upon a time', 'Lily', 'The big dog was very'];
    const events: TokenEvent[] = [];
    const together = await generate(model, tokenizer, prompts, {
      maxNewTokens: 16,
      onToken: (event) => events.push(event),
    });
    for (const [i, prompt] of prompts.entries()) {
      const [alone] = await generate(model, tokenizer, prompt, { maxNewTokens: 16 });
      expect(together[i].tokens, prompt).toEqual(alone.tokens);
      expect(together[i].text).toBe(alone.text);
      expect(
        events
          .filter((e) => e.prompt === i)
          .map((e) => e.text)
          .join(''),
      ).toBe(alone.text);
    }
  });

  it('samples reproducibly from a seed, and differently from another', async () => {
    const options = { maxNewTokens: 24, temperature: 1, topK: 40, topP: 0.95, minP: 0.02 };
    const [a] = await generate(model, tokenizer, [[1]], { ...options, seed: 42 });
    const [b] = await generate(model, tokenizer, [[1]], { ...options, seed: 42 });
    const [c] = await generate(model, tokenizer, [[1]], { ...options, seed: 43 });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).toHaveLength(24);
    expect(c.tokens).not.toEqual(a.tokens);
    const batch = await generate(model, tokenizer, [[1], [1]], { ...options, seed: 42 });
    expect(batch[0].tokens).not.toEqual(batch[1].tokens);
  });

  it('applies the repetition penalty exactly as a step-by-step reference without cache', async () => {
    // So strong that a token already seen (positive logits here) never wins again.
    const penalty = 50;
    const steps = 30;
    const [result] = await generate(model, tokenizer, [[1]], {
      maxNewTokens: steps,
      repetitionPenalty: penalty,
    });
    expect(new Set([1, ...result.tokens]).size).toBe(steps + 1);
    expect(result.tokens).not.toEqual(greedy.slice(0, steps));
    const sequence = [1];
    for (let step = 0; step < steps; step++) {
      const logits = await device.scope(async () => {
        const ids = device.fromArray(sequence, [1, sequence.length], 'i32');
        return (await model.forward(ids, { logits: 'last' }).toArray()) as Float32Array;
      });
      applyRepetitionPenalty(logits, sequence, penalty);
      sequence.push(argmaxOf(logits));
    }
    expect(result.tokens).toEqual(sequence.slice(1));
  });

  it('reports timings and stops when aborted', async () => {
    const { results, timings } = await generateWithTimings(model, tokenizer, 'Once upon a time', {
      maxNewTokens: 8,
    });
    expect(timings.promptTokens).toBe(5);
    expect(timings.newTokens).toBe(8);
    expect(timings.decodeSteps).toBe(7);
    expect(timings.prefillMs).toBeGreaterThan(0);
    expect(results[0].tokens).toHaveLength(8);
    const controller = new AbortController();
    const [aborted] = await generate(model, tokenizer, [[1]], {
      maxNewTokens: 50,
      signal: controller.signal,
      onToken: (event) => {
        if (event.index === 2) controller.abort();
      },
    });
    expect(aborted.finishReason).toBe('aborted');
    expect(aborted.tokens).toHaveLength(4);
  });

  it('rejects bad prompts and options with a clear message', async () => {
    await expect(generate(model, tokenizer, [[1, 9999]])).rejects.toThrow(
      /token id 9999, outside the vocabulary of 512/,
    );
    await expect(generate(model, tokenizer, [[]])).rejects.toThrow(/prompt 0 has no tokens/);
    await expect(generate(model, null, 'text')).rejects.toThrow(/need a tokenizer/);
    await expect(generate(model, null, [[1]], { stopStrings: ['x'] })).rejects.toThrow(
      /stopStrings need a tokenizer/,
    );
    await expect(generate(model, tokenizer, [[1]], { topP: 2 })).rejects.toThrow(/topP/);
    // The rotary tables kept between calls (rotary-table-cache.test.ts) are the model's; without
    // them nothing but the parameters may be left.
    model.releaseCachedTables();
    expect(device.memory().liveTensors).toBe([...model.namedParameters()].length);
  });
});

describe.skipIf(!requireFixtures(HF))('generate with NaN logits', () => {
  it('names the NaN instead of decoding an id off the vocabulary (issue 19)', async () => {
    const device = await createDevice();
    const { model, tokenizer } = (await loadModelDirectory(device, fixturePath(HF))) as {
      model: CausalLM;
      tokenizer: Tokenizer;
    };
    try {
      const norm = [...model.namedParameters()].find(([name]) => name === 'model.norm.weight')![1];
      device.write(norm, new Float32Array(norm.size).fill(Number.NaN));
      for (const temperature of [0, 0.8]) {
        await expect(
          generate(model, tokenizer, [[1]], { maxNewTokens: 3, temperature, seed: 1 }),
        ).rejects.toThrow(/next-token logits are NaN \(row 0, after 0 new tokens\)/);
      }
    } finally {
      model.dispose();
      device.destroy();
    }
  });
});
