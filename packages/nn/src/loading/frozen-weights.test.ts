import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantize } from '@webtune/gguf';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, Rng, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CausalLM } from '../models/llama.js';
import { loadModelDirectory } from '../node.js';
import { perplexityOfIds } from '../perplexity.js';
import { FIXTURES } from '../testing/fixtures.js';
import type { BaseFormat, PackSummary } from './frozen-weights.js';
import { formatFor, packFrozen, packFrozenWeights } from './frozen-weights.js';
import { saveModel } from './save.js';

const HF = 'models/stories260K-hf';

/**
 * Mean loss (nats) of stories260K on the perplexity golden's text with each base format (the
 * projections, and the tied token table in that format, or Q8_0 under Q8_0/Q4_0) against f32. Bounds: f16 1e-3, bf16 1e-2, Q8_0 0.02 and Q4_0 0.15 (round-to-nearest at 4 bits; the
 * measured cost is in docs/guide/quantization.md).
 */
const BOUNDS: [BaseFormat, number][] = [
  ['f16', 1e-3],
  ['bf16', 1e-2],
  ['q8_0', 0.02],
  ['q4_0', 0.15],
];

describe.skipIf(!requireFixtures(HF))('stories260K with a packed frozen base', () => {
  let device: Device;
  const ids: number[] = JSON.parse(readFileSync(join(FIXTURES, 'stories260k-perplexity.json'), 'utf8')).ids;
  const loss = async (model: CausalLM) =>
    (await perplexityOfIds(model, ids, { window: 128, stride: 64 })).meanLoss;
  let f32Loss = 0;

  beforeAll(async () => {
    device = await createDevice();
    const { model } = await loadModelDirectory(device, fixturePath(HF));
    f32Loss = await loss(model as CausalLM);
    model.dispose();
  });
  afterAll(() => device?.destroy());

  for (const [format, bound] of BOUNDS) {
    it(`${format}: loss within ${bound} nats of f32, packed while streaming in`, async () => {
      const packSummary: PackSummary = { packed: 0, fallback: 0, bytes: 0, f32Bytes: 0 };
      const { model } = await loadModelDirectory(device, fixturePath(HF), {
        baseFormat: format,
        packSummary,
      });
      try {
        const packed = [...model.namedPackedParameters()];
        // 5 layers x 7 projections, and the token table (Q8_0 under Q8_0/Q4_0, the base's halves
        // under f16/bf16), which the tied head shares (listed under both names); down_proj (172
        // inputs) is not whole blocks: f16.
        const quantized = format === 'q8_0' || format === 'q4_0';
        expect(packed.length).toBe(37);
        expect(packSummary.packed + packSummary.fallback).toBe(36);
        const table = model.getSubmodule('model.embed_tokens').packedParameter('weight');
        expect(model.getSubmodule('lm_head').packedParameter('weight')).toBe(table);
        expect(table?.format).toBe(quantized ? 'q8_0' : format);
        expect(packSummary.fallback).toBe(format === 'q8_0' || format === 'q4_0' ? 5 : 0);
        expect(packSummary.bytes).toBeLessThan(packSummary.f32Bytes / 1.9);
        const names = [...model.namedParameters()].map(([name]) => name);
        expect(names.some((name) => name.endsWith('q_proj.weight'))).toBe(false);
        expect(names.includes('model.embed_tokens.weight')).toBe(false);
        const delta = Math.abs((await loss(model)) - f32Loss);
        console.log(
          `stories260K ${format} base: f32 loss ${f32Loss.toFixed(5)}, |delta| ${delta.toExponential(3)} nats`,
        );
        expect(delta).toBeLessThan(bound);
      } finally {
        model.dispose();
      }
    });
  }

  it('packing a loaded model equals packing on load, and refuses to save it whole', async () => {
    const streamed = (await loadModelDirectory(device, fixturePath(HF), { baseFormat: 'q4_0' })).model;
    const loaded = (await loadModelDirectory(device, fixturePath(HF))).model;
    try {
      const summary = await packFrozenWeights(loaded, 'q4_0');
      expect(summary).toMatchObject({ packed: 31, fallback: 5 });
      const a = streamed.getSubmodule('model.layers.2.mlp.up_proj').packedParameter('weight')!;
      const b = loaded.getSubmodule('model.layers.2.mlp.up_proj').packedParameter('weight')!;
      expect(await a.readBytes()).toEqual(await b.readBytes());
      expect(await loss(streamed)).toBe(await loss(loaded));
      expect(() => loaded.getSubmodule('model.layers.0.self_attn.q_proj').parameter('weight')).toThrow(
        /frozen q4_0 base weight/,
      );
      await expect(saveModel(loaded, { writeFile: async () => {} })).rejects.toThrow(
        /base weights are held packed \((q8_0|q4_0)/,
      );
    } finally {
      streamed.dispose();
      loaded.dispose();
    }
  });
});

describe('Q4_K frozen weights', () => {
  it("quantizes with @webtune/gguf's Q4_K, falling back to Q4_0 then f16 for rows of other sizes", async () => {
    expect(formatFor('q4_k', 512)).toBe('q4_k');
    expect(formatFor('q4_k', 96)).toBe('q4_0');
    expect(formatFor('q4_k', 172)).toBe('f16');
    const device = await createDevice();
    try {
      const values = new Rng(4).normal(3 * 256);
      const weight = packFrozen(device, values, [3, 256], 'q4_k');
      expect(weight.format).toBe('q4_k');
      expect(await weight.readBytes()).toEqual(quantize('Q4_K', values));
      weight.dispose();
    } finally {
      device.destroy();
    }
  });
});
