import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsBytes } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelConfig } from '../config/model-config.js';
import { Linear } from '../module/layers.js';
import { cachedStepLogits } from '../testing/cached-steps.js';
import { ARCHITECTURE_FIXTURES, FIXTURES, loadArchitectureFixture } from '../testing/fixtures.js';
import { CausalLM } from './llama.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

// Logits of up to |9| in f32 after two layers: a few 1e-6 relative is what f32 gives.
const TOLERANCE = { atol: 1e-4, rtol: 1e-4 };

describe('architectures against PyTorch goldens (tools/golden/nn_architectures.py)', () => {
  for (const name of ARCHITECTURE_FIXTURES) {
    it(`${name}: full forward logits`, async () => {
      const { model, golden } = await loadArchitectureFixture(device, name);
      try {
        const [batch, seq, vocab] = golden.shape;
        const logits = await device.scope(async () => {
          const ids = device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32');
          const out = model.forward(ids);
          expect(out.shape).toEqual([batch, seq, vocab]);
          return out.toArray();
        });
        expectClose(logits, golden.logits, { ...TOLERANCE, label: name });
      } finally {
        model.dispose();
      }
    });
  }

  // Dynamic NTK scaling depends on the length seen so far, so a cached decode legitimately
  // differs from one full pass past the original context; the others must agree.
  for (const name of ARCHITECTURE_FIXTURES.filter((n) => n !== 'llama-dynamic-rope')) {
    it(`${name}: prefill + KV-cached steps give the same logits as the full pass`, async () => {
      const { model, golden } = await loadArchitectureFixture(device, name);
      try {
        const [batch, seq, vocab] = golden.shape;
        const prefill = 5;
        const { steps: rows, cacheLength } = await cachedStepLogits(device, model, golden.input_ids, prefill);
        expect(cacheLength).toBe(seq);
        // Reassemble [batch, seq, vocab] from the steps ([batch, steps, vocab] each).
        const assembled = new Float32Array(batch * seq * vocab);
        let position = 0;
        for (const step of rows) {
          const steps = step.length / (batch * vocab);
          for (let b = 0; b < batch; b++) {
            assembled.set(
              step.subarray(b * steps * vocab, (b + 1) * steps * vocab),
              (b * seq + position) * vocab,
            );
          }
          position += steps;
        }
        expectClose(assembled, golden.logits, { ...TOLERANCE, label: `${name} cached` });
      } finally {
        model.dispose();
      }
    });
  }
});

describe('module tree', () => {
  it('names parameters and modules as Hugging Face does, once per tied tensor', async () => {
    const { model } = await loadArchitectureFixture(device, 'qwen2');
    try {
      const names = [...model.namedParameters()].map(([name]) => name);
      const file = readSafetensorsBytes(
        readFileSync(join(FIXTURES, 'architectures', 'qwen2', 'model.safetensors')),
      );
      expect(new Set(names)).toEqual(new Set(file.tensors.map((t) => t.name)));
      expect(names).not.toContain('lm_head.weight'); // tied: listed once, as the embedding
      expect(model.getParameterByName('lm_head.weight')).toBe(
        model.getParameterByName('model.embed_tokens.weight'),
      );
      expect(names).toContain('model.layers.1.self_attn.q_proj.bias');
      const modules = new Map(model.namedModules());
      expect(modules.get('model.layers.1.self_attn.q_proj')).toBeInstanceOf(Linear);
      expect(modules.get('lm_head')).toBeInstanceOf(Linear);
      expect([...modules.keys()].slice(0, 4)).toEqual(['', 'model', 'model.embed_tokens', 'model.layers']);
      expect(model.parameterCount()).toBe(
        file.tensors.reduce((n, t) => n + t.shape.reduce((p, d) => p * d, 1), 0),
      );
    } finally {
      model.dispose();
    }
  });

  it('uses a replaced submodule at the next forward (how adapters wrap layers)', async () => {
    const { model, golden } = await loadArchitectureFixture(device, 'llama');
    try {
      const [batch, seq] = golden.shape;
      const path = 'model.layers.0.mlp.down_proj';
      const original = model.getSubmodule<Linear>(path);
      let calls = 0;
      class Counting extends Linear {
        override forward(x: Parameters<Linear['forward']>[0]) {
          calls++;
          return original.forward(x);
        }
      }
      model.setSubmodule(path, new Counting(original.inFeatures, original.outFeatures, false));
      await device.scope(async () => {
        const ids = device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32');
        await model.forward(ids).toArray();
      });
      expect(calls).toBe(1);
      expect(() => model.setSubmodule('model.layers.9.mlp', original)).toThrow(/no submodule/);
    } finally {
      model.dispose();
    }
  });

  it('lists empty slots and rejects a tensor of the wrong shape', () => {
    const model = new CausalLM(
      device,
      createModelConfig({
        hiddenSize: 8,
        intermediateSize: 12,
        numHiddenLayers: 1,
        numAttentionHeads: 2,
        vocabSize: 10,
      }),
    );
    expect(model.missingParameters()).toContain('model.layers.0.self_attn.q_proj.weight');
    expect(() => model.assertLoaded()).toThrow(/parameters are missing/);
    const wrong = device.fromArray(new Float32Array(6), [2, 3], 'f32');
    expect(() => model.setParameterByName('model.norm.weight', wrong)).toThrow(
      /expected shape \[8\], got \[2, 3\]/,
    );
    wrong.dispose();
  });
});
