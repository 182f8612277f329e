import { createModelConfig } from '@webtune/nn';
import { describe, expect, it } from 'vitest';
import { planRun } from '../plan/run-plan.js';
import { planMemory } from './memory-plan.js';
import { memoryPlanInputOf } from './run-memory-input.js';

const MODEL = createModelConfig({
  hiddenSize: 288,
  intermediateSize: 768,
  numHiddenLayers: 6,
  numAttentionHeads: 6,
  numKeyValueHeads: 6,
  vocabSize: 32000,
  tieWordEmbeddings: true,
});
const DEVICE = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 };
const run = (values: Record<string, unknown>) =>
  planRun({ model_name_or_path: 'model', dataset: 'identity', output_dir: 'out', stage: 'sft', ...values });

describe('the memory plan input of a planned run', () => {
  it('reads LLaMA-Factory keys and their defaults as the run will use them', () => {
    const input = memoryPlanInputOf(
      run({
        finetuning_type: 'lora',
        lora_rank: 16,
        lora_target: 'q_proj,v_proj',
        lora_dropout: 0.05,
        additional_target: 'embed_tokens',
        per_device_train_batch_size: 4,
        cutoff_len: 512,
        bf16: true,
      }),
      MODEL,
      { ...DEVICE, budgetBytes: 2 ** 32, matmulOuterSegments: true },
    );
    expect(input).toMatchObject({
      baseFormat: 'bf16',
      finetuningType: 'lora',
      lora: {
        r: 16,
        targetsPerLayer: 2,
        dora: false,
        dropout: true,
        trainedTables: { embedding: true, head: false },
      },
      batchSize: 4,
      sequenceLength: 512,
      // LLaMA-Factory checkpoints unless disable_gradient_checkpointing; bf16 stores its inputs in f16.
      gradientCheckpointing: true,
      checkpointDtype: 'f16',
      // and the activations a layer keeps when checkpointing is off.
      activationDtype: 'f16',
      matmulOuterSegments: true,
      limits: { ...DEVICE, budgetBytes: 2 ** 32 },
    });
    const defaults = memoryPlanInputOf(run({}), MODEL, DEVICE);
    // Transformers' per_device_train_batch_size default, LLaMA-Factory's cutoff_len default.
    expect(defaults).toMatchObject({
      batchSize: 8,
      sequenceLength: 2048,
      checkpointDtype: 'f32',
      activationDtype: 'f32',
    });
    // An adapter without shader-f16 keeps f32 activations whatever the config asks.
    expect(memoryPlanInputOf(run({ bf16: true }), MODEL, { ...DEVICE, hasF16: false }).activationDtype).toBe(
      'f32',
    );
    expect(defaults.lora?.targetsPerLayer).toBe(7);
    expect(defaults.limits).not.toHaveProperty('budgetBytes');
  });

  it('plans freeze tuning as full, the bottleneck adapter like LoRA, and takes the held base format', () => {
    expect(memoryPlanInputOf(run({ finetuning_type: 'freeze' }), MODEL, DEVICE).finetuningType).toBe('full');
    expect(memoryPlanInputOf(run({ finetuning_type: 'adapter' }), MODEL, DEVICE).finetuningType).toBe('lora');
    const lora = run({ finetuning_type: 'lora', quantization_bit: 4 });
    expect(memoryPlanInputOf(lora, MODEL, DEVICE).baseFormat).toBe('q4_0');
    expect(memoryPlanInputOf(lora, MODEL, DEVICE, 'f32').baseFormat).toBe('f32');
    // What it changes: a quantized base and f16 checkpoints plan less than the f32 defaults.
    const f32 = planMemory(memoryPlanInputOf(run({ infer_dtype: 'float32' }), MODEL, DEVICE));
    const small = planMemory(memoryPlanInputOf(run({ quantization_bit: 4, bf16: true }), MODEL, DEVICE));
    expect(small.peak).toBeLessThan(f32.peak);
  });

  it('plans the logits in the chunks the tasks will use (logitsChunkRows), and what they save', () => {
    // Qwen3-0.6B's shape: a 151,936-token vocabulary, 1 x 128 tokens (78 MB of f32 logits).
    const qwen = createModelConfig({
      architecture: 'Qwen3ForCausalLM',
      hiddenSize: 1024,
      intermediateSize: 3072,
      numHiddenLayers: 28,
      numAttentionHeads: 16,
      numKeyValueHeads: 8,
      headDim: 128,
      vocabSize: 151936,
      tieWordEmbeddings: true,
      qkNorm: true,
    });
    const keys = { per_device_train_batch_size: 1, cutoff_len: 128, quantization_bit: 4 };
    const chunked = memoryPlanInputOf(run(keys), qwen, DEVICE);
    // 64 MiB holds 110 rows of 151,936 logits: 2 chunks of 64.
    expect(chunked.logitsChunkRows).toBe(64);
    const off = memoryPlanInputOf(run({ ...keys, logits_chunk_rows: 0 }), qwen, DEVICE);
    expect(off).not.toHaveProperty('logitsChunkRows');
    expect(memoryPlanInputOf(run({ ...keys, logits_chunk_rows: 16 }), qwen, DEVICE).logitsChunkRows).toBe(16);
    // A trained head (the tied table under modules_to_save) keeps 78 MB of logits whole.
    const trained = memoryPlanInputOf(run({ ...keys, additional_target: 'embed_tokens' }), qwen, DEVICE);
    expect(trained).not.toHaveProperty('logitsChunkRows');
    const [planChunked, planOff] = [planMemory(chunked), planMemory(off)];
    expect(planChunked.logitsChunkRows).toBe(64);
    expect(planOff.logitsChunkRows).toBe(128);
    // One chunk's logits and gradient, each in a pooled buffer (at most 25% above its size).
    expect(planChunked.logits).toBeGreaterThanOrEqual(2 * 64 * 151936 * 4);
    expect(planChunked.logits).toBeLessThanOrEqual(1.25 * 2 * 64 * 151936 * 4);
    // The whole logits and their gradient (2 x 74 MiB) against one chunk's (2 x 37 MiB) and the
    // row gradients: over 60 MiB less at the peak.
    expect(planOff.peak - planChunked.peak).toBeGreaterThan(60 * 1024 ** 2);
  });
});
