import { createModelConfig } from '@webtune/nn';
import { planRun } from '@webtune/train';
import { describe, expect, it } from 'vitest';
import { baseFormatOf, memoryBudget, refuseIfTooLarge, trainingMemoryPlan } from './base-precision.js';

const LORA = { finetuning_type: 'lora' };
/** A run of these keys (the memory plan reads the planned run, as the board does). */
const run = (values: Record<string, unknown>) =>
  planRun({ model_name_or_path: 'model', dataset: 'identity', output_dir: 'out', stage: 'sft', ...values });
const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  return null;
};

describe('base precision from LLaMA-Factory keys', () => {
  it('maps quantization_bit, bf16, fp16 and pure_bf16 to a base format', () => {
    // infer_dtype auto: f16 for LoRA and DoRA (every adapter decodes half weights), f32 where the
    // base trains or is rewritten (full, freeze, pissa_init); float32 pins f32.
    expect(baseFormatOf({ ...LORA })).toBe('f16');
    expect(baseFormatOf({ ...LORA, infer_dtype: 'float32' })).toBe('f32');
    expect(baseFormatOf({ ...LORA, infer_dtype: 'bfloat16' })).toBe('bf16');
    expect(baseFormatOf({ ...LORA, use_dora: true })).toBe('f16');
    expect(baseFormatOf({ ...LORA, pissa_init: true })).toBe('f32');
    expect(baseFormatOf({ finetuning_type: 'full' })).toBe('f32');
    expect(baseFormatOf({ finetuning_type: 'freeze' })).toBe('f32');
    expect(baseFormatOf({ ...LORA, quantization_bit: 8 })).toBe('q8_0');
    expect(
      baseFormatOf({ ...LORA, quantization_bit: 4, quantization_type: 'fp4', double_quantization: true }),
    ).toBe('q4_0');
    expect(baseFormatOf({ ...LORA, bf16: true })).toBe('bf16');
    expect(baseFormatOf({ ...LORA, pure_bf16: true })).toBe('bf16');
    expect(baseFormatOf({ ...LORA, fp16: true })).toBe('f16');
    // The quantized base wins over the half-precision switch.
    expect(baseFormatOf({ ...LORA, quantization_bit: 4, bf16: true })).toBe('q4_0');
  });

  it('refuses bad combinations with the reason, before any work', () => {
    expect(errorOf(() => baseFormatOf({ ...LORA, quantization_bit: 3 }))).toBe(
      'quantization_bit: 3 is not supported; use 8 (Q8_0 blocks) or 4 (Q4_0 blocks), or leave it out for an f32 base',
    );
    expect(errorOf(() => baseFormatOf({ finetuning_type: 'full', quantization_bit: 8 }))).toMatch(
      /^quantization_bit: 8 with finetuning_type: full: a quantized base is frozen and takes no gradient/,
    );
    // bf16 / fp16 are mixed-precision switches: a run that writes its base keeps it in f32.
    expect(baseFormatOf({ finetuning_type: 'freeze', bf16: true })).toBe('f32');
    expect(baseFormatOf({ finetuning_type: 'full', fp16: true })).toBe('f32');
    expect(baseFormatOf({ ...LORA, pissa_init: true, bf16: true })).toBe('f32');
    expect(errorOf(() => baseFormatOf({ finetuning_type: 'full', infer_dtype: 'float16' }))).toMatch(
      /^infer_dtype: float16 stores the base as frozen half-precision weights, which finetuning_type: full has to write; use infer_dtype: auto or float32$/,
    );
    expect(errorOf(() => baseFormatOf({ ...LORA, infer_dtype: 'float8' }))).toBe(
      'infer_dtype must be auto, float32, float16 or bfloat16, got float8',
    );
    expect(errorOf(() => baseFormatOf({ ...LORA, bf16: true, fp16: true }))).toBe(
      'bf16 and fp16 exclude each other: pick one',
    );
    expect(errorOf(() => baseFormatOf({ ...LORA, quantization_bit: 4, quantization_type: 'int4' }))).toMatch(
      /quantization_type must be nf4 or fp4/,
    );
  });

  it('refuses a run over WEBTUNE_MEMORY_BUDGET with advice', () => {
    const previous = process.env.WEBTUNE_MEMORY_BUDGET;
    process.env.WEBTUNE_MEMORY_BUDGET = '1GiB';
    try {
      expect(memoryBudget('discrete-gpu')).toBe(1024 ** 3);
      const config = createModelConfig({
        architecture: 'Qwen3ForCausalLM',
        hiddenSize: 1024,
        intermediateSize: 3072,
        numHiddenLayers: 28,
        numAttentionHeads: 16,
        numKeyValueHeads: 8,
        headDim: 128,
        vocabSize: 151936,
        tieWordEmbeddings: true,
      });
      const values = {
        ...LORA,
        infer_dtype: 'float32',
        per_device_train_batch_size: 1,
        cutoff_len: 128,
        lora_rank: 8,
      };
      const limits = {
        maxBufferSize: 2 ** 32 - 1,
        maxStorageBufferBindingSize: 2 ** 27,
        budgetBytes: memoryBudget(null),
      };
      const f32 = trainingMemoryPlan(run(values), config, limits);
      expect(errorOf(() => refuseIfTooLarge(f32))).toMatch(
        /^this run does not fit: the run needs about [\d.]+ GiB, the budget is 1.00 GiB. Try: quantize the base: quantization_bit: 4/,
      );
      process.env.WEBTUNE_MEMORY_BUDGET = '3GiB';
      const q4 = trainingMemoryPlan(run({ ...values, quantization_bit: 4 }), config, {
        ...limits,
        budgetBytes: memoryBudget(null),
      });
      expect(q4.peak).toBeLessThan(f32.peak / 1.5);
      expect(() => refuseIfTooLarge(q4)).not.toThrow();
      process.env.WEBTUNE_MEMORY_BUDGET = 'lots';
      expect(() => memoryBudget(null)).toThrow(/WEBTUNE_MEMORY_BUDGET must be bytes or like 4GiB/);
    } finally {
      if (previous === undefined) delete process.env.WEBTUNE_MEMORY_BUDGET;
      else process.env.WEBTUNE_MEMORY_BUDGET = previous;
    }
  });

  it('additional_target embed_tokens,lm_head plans the f32 copies, their gradients and AdamW moments', () => {
    const config = createModelConfig({
      hiddenSize: 288,
      intermediateSize: 768,
      numHiddenLayers: 6,
      numAttentionHeads: 6,
      vocabSize: 32000,
      tieWordEmbeddings: true,
    });
    const limits = { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27 };
    const values = { ...LORA, quantization_bit: 8, cutoff_len: 64 };
    const plain = trainingMemoryPlan(run(values), config, limits);
    const both = trainingMemoryPlan(
      run({ ...values, additional_target: 'embed_tokens,lm_head' }),
      config,
      limits,
    );
    const embedding = trainingMemoryPlan(
      run({ ...values, additional_target: ['embed_tokens'] }),
      config,
      limits,
    );
    // One table: 32000 x 288 f32 = 35.2 MiB, in a 40 MiB buffer of the pool; parameter, gradient,
    // two moments.
    const table = 40 * 2 ** 20;
    expect(embedding.trainable - plain.trainable).toBe(table);
    expect(embedding.optimizer - plain.optimizer).toBe(2 * table);
    expect(both.gradients - plain.gradients).toBe(2 * table);
    // And the head's gradient while the logits are held.
    expect(both.peak - plain.peak).toBeGreaterThan(7 * table);
  });
});
