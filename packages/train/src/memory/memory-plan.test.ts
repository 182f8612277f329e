import { sizeClass } from '@webtune/tensors';
import { describe, expect, it } from 'vitest';
import { BROWSER_TAB_BUDGET, formatMemoryPlan, type PlanModelShape, planMemory } from './memory-plan.js';

const QWEN3_0_6B: PlanModelShape = {
  hiddenSize: 1024,
  intermediateSize: 3072,
  numHiddenLayers: 28,
  numAttentionHeads: 16,
  numKeyValueHeads: 8,
  headDim: 128,
  vocabSize: 151936,
  tieWordEmbeddings: true,
};
const LIMITS = { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27 };

describe('memory plan', () => {
  it('matmulOuterSegments: an f32 table over 4 MiB is read in K segments in dh = dlogits W, not copied', () => {
    const stories15M: PlanModelShape = {
      hiddenSize: 288,
      intermediateSize: 768,
      numHiddenLayers: 6,
      numAttentionHeads: 6,
      numKeyValueHeads: 6,
      headDim: 48,
      vocabSize: 32000,
      tieWordEmbeddings: true,
    };
    const plan = (matmulOuterSegments: boolean) =>
      planMemory({
        model: stories15M,
        baseFormat: 'f32',
        finetuningType: 'lora',
        lora: { r: 8, targetsPerLayer: 7 },
        batchSize: 4,
        sequenceLength: 256,
        gradientCheckpointing: false,
        matmulOuterSegments,
        limits: LIMITS,
      });
    // The table [32000, 288] f32 (36.9 MB) is copied whole without segments.
    expect(plan(false).workspace).toBe(sizeClass(32000 * 288 * 4));
    expect(plan(true).workspace).toBe(0);
    expect(plan(false).peak - plan(true).peak).toBe(sizeClass(32000 * 288 * 4));
  });

  it('counts weights by format: Q4_0 is 18 bytes per 32 weights, f16 2 per weight, the tied table Q8_0 under Q4_0, f16 under f16', () => {
    const base = { model: QWEN3_0_6B, finetuningType: 'none' as const, batchSize: 1, sequenceLength: 128 };
    const plan = (baseFormat: 'f32' | 'f16' | 'q4_0') =>
      planMemory({ ...base, baseFormat, gradientCheckpointing: false, limits: LIMITS });
    // Projections per layer: q 2048x1024, k/v 1024x1024, o 1024x2048, gate/up 3072x1024, down 1024x3072.
    const perLayer = 2048 * 1024 * 2 + 1024 * 1024 * 2 + 3072 * 1024 * 3;
    const embedding = 151936 * 1024 * 4; // 593.5 MiB f32, in chunks of at most 128 MiB
    const f16 = plan('f16');
    const q4 = plan('q4_0');
    const f32 = plan('f32');
    // Buffer slack of the pool's size classes is at most 25% per tensor.
    expect(q4.weights - f16.weights).toBeLessThan(0);
    const q4Bytes = embedding * (34 / 32 / 4) + 28 * perLayer * (18 / 32);
    expect(q4.weights).toBeGreaterThan(q4Bytes);
    expect(q4.weights).toBeLessThan(1.25 * q4Bytes + 1e6);
    // The f16 table: 296.8 MiB, half the f32 one.
    expect(f16.weights).toBeGreaterThan(embedding / 2 + 28 * perLayer * 2);
    expect(f16.weights).toBeLessThan(1.25 * (embedding / 2 + 28 * perLayer * 2) + 1e6);
    expect(f32.weights).toBeGreaterThan(embedding + 28 * perLayer * 4);
    // Inference: a KV cache of 2 x layers x tokens x kv heads x head_dim f32.
    expect(q4.kvCache).toBe(2 * 28 * 128 * 1024 * 4);
    expect(q4.gradients + q4.optimizer + q4.activations).toBe(0);
  });

  it('LoRA: trainable state is A and B per target, twice more for AdamW, once for gradients', () => {
    const plan = planMemory({
      model: QWEN3_0_6B,
      baseFormat: 'q4_0',
      finetuningType: 'lora',
      lora: { r: 8, targetsPerLayer: 7 },
      batchSize: 1,
      sequenceLength: 128,
      gradientCheckpointing: false,
      limits: LIMITS,
    });
    const perLayer = 8 * (1024 + 2048) * 2 + 8 * (1024 + 1024) * 2 + 8 * (3072 + 1024) * 3;
    expect(plan.trainable).toBe(28 * perLayer * 4);
    expect(plan.gradients).toBe(plan.trainable);
    expect(plan.optimizer).toBe(2 * plan.trainable);
    expect(plan.activationsCheckpointed).toBeLessThan(plan.activations / 5);
    // The logits and their gradient, each in an 80 MiB buffer of the pool (77.8 MB asked).
    expect(plan.logits).toBe(2 * sizeClass(128 * 151936 * 4));
    expect(sizeClass(128 * 151936 * 4)).toBe(80 * 2 ** 20);
    expect(plan.fits).toBe(true);
  });

  it('refuses a run over the budget with advice, most effective first', () => {
    const plan = planMemory({
      model: {
        ...QWEN3_0_6B,
        hiddenSize: 2560,
        intermediateSize: 9728,
        numHiddenLayers: 36,
        numAttentionHeads: 32,
      },
      baseFormat: 'f32',
      finetuningType: 'full',
      batchSize: 4,
      sequenceLength: 1024,
      gradientCheckpointing: false,
      limits: { ...LIMITS, budgetBytes: BROWSER_TAB_BUDGET },
    });
    expect(plan.fits).toBe(false);
    expect(plan.problems[0]).toMatch(/the run needs about [\d.]+ GiB, the budget is 4.00 GiB/);
    expect(plan.advice[0]).toMatch(/quantization_bit: 4/);
    expect(plan.advice.join('\n')).toMatch(
      /finetuning_type: lora[\s\S]*gradient checkpointing[\s\S]*smaller batch[\s\S]*cutoff_len/,
    );
    const lines = formatMemoryPlan(plan, false);
    expect(lines.some((line) => /^ {2}predicted peak\s+[\d.]+ GiB$/.test(line))).toBe(true);
    expect(lines.at(-1)).toMatch(/advice: a shorter cutoff_len/);
  });

  it('flags a row wider than one storage binding', () => {
    const plan = planMemory({
      model: QWEN3_0_6B,
      baseFormat: 'q4_0',
      finetuningType: 'lora',
      batchSize: 1,
      sequenceLength: 128,
      gradientCheckpointing: true,
      limits: { maxBufferSize: 256 * 1024 ** 2, maxStorageBufferBindingSize: 512 * 1024 },
    });
    expect(plan.fits).toBe(false);
    expect(plan.problems[0]).toMatch(
      /one row of the logits \(593.5 KiB\) exceeds this adapter's storage binding limit \(512.0 KiB\)/,
    );
  });
});
