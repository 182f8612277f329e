import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ModelConfig, parseModelConfig } from '../config/model-config.js';
import { KVCache } from '../generation/kv-cache.js';
import { loadPretrained, memoryFileSource } from '../loading/pretrained.js';
import { FIXTURES, maxAbsDifference } from '../testing/fixtures.js';
import type { CausalLM } from './llama.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

const TOLERANCE = { atol: 1e-4, rtol: 1e-4 };
const WINDOW = 8;
const BATCH = 2;
const SEQ = 20;

/** The Mistral fixture (2 layers, 4 query heads over 2 kv heads) with config.json's sliding_window replaced. */
async function mistral(slidingWindow: number | null) {
  const folder = join(FIXTURES, 'architectures', 'mistral');
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  config.sliding_window = slidingWindow;
  const source = memoryFileSource(
    {
      'config.json': new TextEncoder().encode(JSON.stringify(config)),
      'model.safetensors': readFileSync(join(folder, 'model.safetensors')),
    },
    folder,
  );
  return loadPretrained(device, source);
}

async function logitsOf(model: CausalLM, ids: number[][], cache?: KVCache): Promise<Float32Array> {
  return device.scope(async () => {
    const input = device.fromArray(ids.flat(), [ids.length, ids[0].length], 'i32');
    return (await model.forward(input, { cache }).toArray()) as Float32Array;
  });
}

/**
 * Hugging Face's MistralForCausalLM forward in float64, written out: embedding, per layer
 * RMSNorm -> q/k/v projections -> rotate-half RoPE -> GQA attention with the causal sliding-window
 * mask (query p sees keys p - window < j <= p, as transformers' sliding-window mask keeps them)
 * -> o_proj residual, RMSNorm -> SwiGLU MLP residual; final RMSNorm and lm_head.
 */
async function referenceLogits(model: CausalLM, config: ModelConfig, ids: number[][], window: number) {
  const weights = new Map<string, Float32Array>();
  for (const [name, tensor] of model.namedParameters()) {
    weights.set(name, Float32Array.from(await tensor.toArray()));
  }
  const weight = (name: string) => {
    const w = weights.get(name);
    if (!w) throw new Error(`missing ${name}`);
    return w;
  };
  const { hiddenSize: hidden, numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim } = config;
  const vocab = config.vocabSize;
  const eps = config.rmsNormEps;
  // y[out] = sum_in W[out, in] x[in] (PyTorch Linear layout).
  const linear = (x: Float64Array, w: Float32Array, outputs: number) => {
    const inputs = x.length;
    const y = new Float64Array(outputs);
    for (let o = 0; o < outputs; o++) {
      let total = 0;
      for (let i = 0; i < inputs; i++) total += w[o * inputs + i] * x[i];
      y[o] = total;
    }
    return y;
  };
  const rmsNorm = (x: Float64Array, w: Float32Array) => {
    let squares = 0;
    for (const value of x) squares += value * value;
    const inverse = 1 / Math.sqrt(squares / x.length + eps);
    return x.map((value, i) => value * inverse * w[i]);
  };
  const rope = (x: Float64Array, position: number) => {
    const half = headDim / 2;
    const out = new Float64Array(x.length);
    for (let h = 0; h < x.length / headDim; h++) {
      for (let i = 0; i < half; i++) {
        const angle = position * config.ropeTheta ** ((-2 * i) / headDim);
        const [a, b] = [x[h * headDim + i], x[h * headDim + i + half]];
        out[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
        out[h * headDim + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
    return out;
  };
  const logits: number[] = [];
  for (const row of ids) {
    const embedding = weight('model.embed_tokens.weight');
    let states = row.map((id) => Float64Array.from(embedding.subarray(id * hidden, (id + 1) * hidden)));
    for (let layer = 0; layer < config.numHiddenLayers; layer++) {
      const at = (name: string) => weight(`model.layers.${layer}.${name}.weight`);
      const normed = states.map((x) => rmsNorm(x, at('input_layernorm')));
      const q = normed.map((x, p) => rope(linear(x, at('self_attn.q_proj'), heads * headDim), p));
      const k = normed.map((x, p) => rope(linear(x, at('self_attn.k_proj'), kvHeads * headDim), p));
      const v = normed.map((x) => linear(x, at('self_attn.v_proj'), kvHeads * headDim));
      states = states.map((x, p) => {
        const attended = new Float64Array(heads * headDim);
        for (let h = 0; h < heads; h++) {
          const kvHead = Math.floor(h / (heads / kvHeads));
          const visible: number[] = [];
          for (let j = 0; j <= p; j++) if (j > p - window) visible.push(j);
          const scores = visible.map((j) => {
            let dot = 0;
            for (let c = 0; c < headDim; c++) dot += q[p][h * headDim + c] * k[j][kvHead * headDim + c];
            return dot / Math.sqrt(headDim);
          });
          const max = Math.max(...scores);
          const exps = scores.map((s) => Math.exp(s - max));
          const sum = exps.reduce((a, b) => a + b, 0);
          visible.forEach((j, n) => {
            for (let c = 0; c < headDim; c++) {
              attended[h * headDim + c] += (exps[n] / sum) * v[j][kvHead * headDim + c];
            }
          });
        }
        const projected = linear(attended, at('self_attn.o_proj'), hidden);
        const h1 = x.map((value, i) => value + projected[i]);
        const m = rmsNorm(h1, at('post_attention_layernorm'));
        const gate = linear(m, at('mlp.gate_proj'), config.intermediateSize);
        const up = linear(m, at('mlp.up_proj'), config.intermediateSize);
        const swiglu = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
        const down = linear(swiglu, at('mlp.down_proj'), hidden);
        return h1.map((value, i) => value + down[i]);
      });
    }
    for (const x of states) {
      logits.push(...linear(rmsNorm(x, weight('model.norm.weight')), weight('lm_head.weight'), vocab));
    }
  }
  return Float64Array.from(logits);
}

describe('Mistral sliding-window attention', () => {
  it(`window ${WINDOW} over ${SEQ} tokens: full pass = float64 reference = prefill + KV-cached steps`, async () => {
    const { model, config } = await mistral(WINDOW);
    const rng = new Rng(2020);
    const ids = Array.from({ length: BATCH }, () =>
      Array.from({ length: SEQ }, () => Math.floor(rng.next() * config.vocabSize)),
    );
    try {
      expect(config.slidingWindow).toBe(WINDOW);
      const full = await logitsOf(model, ids);
      const expected = await referenceLogits(model, config, ids, WINDOW);
      expectClose(full, expected, { ...TOLERANCE, label: 'full pass vs float64 reference' });

      // Prefill 5 tokens, then one token per step: the cache holds every key and attention
      // hides those that left the window.
      const cache = KVCache.forModel(device, config, BATCH, SEQ);
      const assembled = new Float32Array(full.length);
      const vocab = config.vocabSize;
      try {
        const steps: [number, number][] = [[0, 5]];
        for (let t = 5; t < SEQ; t++) steps.push([t, t + 1]);
        for (const [start, end] of steps) {
          const step = await logitsOf(
            model,
            ids.map((row) => row.slice(start, end)),
            cache,
          );
          const width = (end - start) * vocab;
          for (let b = 0; b < BATCH; b++) {
            assembled.set(step.subarray(b * width, (b + 1) * width), (b * SEQ + start) * vocab);
          }
        }
      } finally {
        cache.dispose();
      }
      expectClose(assembled, full, { ...TOLERANCE, label: 'cached steps vs full pass' });

      // The window matters: without it positions from WINDOW on change (two layers reach back
      // 2 * (WINDOW - 1) tokens), the earlier ones do not.
      const { model: unwindowed } = await mistral(null);
      try {
        const plain = await logitsOf(unwindowed, ids);
        const rows = (from: number, to: number, data: Float32Array) =>
          Array.from({ length: BATCH }, (_, b) =>
            Array.from(data.subarray((b * SEQ + from) * vocab, (b * SEQ + to) * vocab)),
          ).flat();
        expect(maxAbsDifference(rows(0, WINDOW, plain), rows(0, WINDOW, full))).toBeLessThan(1e-5);
        expect(maxAbsDifference(rows(WINDOW, SEQ, plain), rows(WINDOW, SEQ, full))).toBeGreaterThan(1e-2);
      } finally {
        unwindowed.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  it('reads max_window_layers: Qwen2 windows only the layers from there on, Mistral every layer', async () => {
    const folder = join(FIXTURES, 'architectures');
    const qwen2 = JSON.parse(readFileSync(join(folder, 'qwen2', 'config.json'), 'utf8'));
    const windowed = parseModelConfig({ ...qwen2, use_sliding_window: true, max_window_layers: 1 });
    expect(windowed.slidingWindow).toBe(qwen2.sliding_window);
    expect(windowed.slidingWindowFromLayer).toBe(1);
    const mistralConfig = JSON.parse(readFileSync(join(folder, 'mistral', 'config.json'), 'utf8'));
    expect(parseModelConfig(mistralConfig).slidingWindowFromLayer).toBe(0);
    expect(() => parseModelConfig({ ...qwen2, use_sliding_window: true, max_window_layers: -1 })).toThrow(
      /max_window_layers/,
    );
  });
});
