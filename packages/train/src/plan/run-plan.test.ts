import { describe, expect, it } from 'vitest';
import { planRun } from './run-plan.js';

const BASE = { model_name_or_path: 'models/x', dataset: 'identity', output_dir: 'saves/x' };

describe('planRun', () => {
  it('stores the frozen base in the best precision the run allows, unless a key pins it', () => {
    expect(planRun(BASE).baseFormat).toBe('f16');
    expect(planRun({ ...BASE, infer_dtype: 'float32' }).baseFormat).toBe('f32');
    expect(planRun({ ...BASE, use_dora: true }).baseFormat).toBe('f16');
    expect(planRun({ ...BASE, pissa_init: true, pissa_convert: true }).baseFormat).toBe('f32');
    expect(planRun({ ...BASE, pissa_init: true, pissa_convert: true, bf16: true }).baseFormat).toBe('f32');
    expect(planRun({ ...BASE, finetuning_type: 'full', bf16: true }).baseFormat).toBe('f32');
    expect(planRun({ ...BASE, finetuning_type: 'full' }).baseFormat).toBe('f32');
    expect(planRun({ ...BASE, quantization_bit: 4 }).baseFormat).toBe('q4_0');
    expect(planRun({ ...BASE, quantization_bit: 4, quantization_type: 'q4_k' }).baseFormat).toBe('q4_k');
    expect(() => planRun({ ...BASE, finetuning_type: 'full', infer_dtype: 'bfloat16' })).toThrow(
      /infer_dtype: bfloat16 stores the base as frozen half-precision weights/,
    );
  });

  it('logits_chunk_rows: unset follows the chunking rule (auto), 0 turns it off, n sets the rows; others are refused', () => {
    expect(planRun(BASE).logitsChunkRows).toBe('auto');
    expect(planRun({ ...BASE, logits_chunk_rows: 0 }).logitsChunkRows).toBe(0);
    expect(planRun({ ...BASE, logits_chunk_rows: '64' }).logitsChunkRows).toBe(64);
    expect(() => planRun({ ...BASE, logits_chunk_rows: -3 })).toThrow(
      /logits_chunk_rows must be 0 \(all logits at once\) or a number of rows per chunk, got -3/,
    );
    expect(() => planRun({ ...BASE, logits_chunk_rows: 1.5 })).toThrow(
      /logits_chunk_rows must be an integer/,
    );
  });

  it("plans LoRA SFT with LLaMA-Factory's defaults", () => {
    const plan = planRun(BASE);
    expect(plan.stage).toBe('sft');
    expect(plan.actions).toEqual({ train: true, evaluate: false, predict: false });
    expect(plan.method).toMatchObject({
      type: 'lora',
      config: {
        r: 8,
        lora_alpha: 16,
        lora_dropout: 0,
        target_modules: 'all-linear',
        base_model_name_or_path: 'models/x',
      },
    });
    expect(plan.task).toEqual({ type: 'supervised', stage: 'sft' });
    expect(plan.trainingArguments).toMatchObject({
      perDeviceTrainBatchSize: 8,
      perDeviceEvalBatchSize: 8,
      gradientAccumulationSteps: 1,
      learningRate: 5e-5,
      numTrainEpochs: 3,
      lrSchedulerType: 'linear',
      gradientCheckpointing: true,
      evalStrategy: 'no',
      evalSteps: null,
      saveStrategy: 'steps',
      saveSteps: 500,
      modelNameOrPath: 'models/x',
    });
    expect(plan.data).toMatchObject({
      datasets: ['identity'],
      cutoffLen: 2048,
      template: null,
      valSize: undefined,
    });
    expect(plan.generation).toMatchObject({ maxNewTokens: 1024, temperature: 0, topP: undefined });
  });

  it('gradient checkpointing: an explicit gradient_checkpointing wins, else disable_gradient_checkpointing decides', () => {
    const checkpointing = (extra: Record<string, unknown>) =>
      planRun({ ...BASE, ...extra }).trainingArguments.gradientCheckpointing;
    expect(checkpointing({})).toBe(true);
    expect(checkpointing({ disable_gradient_checkpointing: true })).toBe(false);
    expect(checkpointing({ gradient_checkpointing: false })).toBe(false);
    expect(checkpointing({ gradient_checkpointing: true, disable_gradient_checkpointing: true })).toBe(true);
  });

  it('maps eval and save strategies, schedules with kwargs, and do_train / do_eval', () => {
    const plan = planRun({
      ...BASE,
      eval_strategy: 'steps',
      logging_steps: 3,
      save_strategy: 'epoch',
      lr_scheduler_type: 'warmup_stable_decay',
      lr_scheduler_kwargs: { num_decay_steps: 10 },
      do_train: false,
      do_eval: true,
      val_size: 0.1,
    });
    expect(plan.trainingArguments).toMatchObject({
      evalStrategy: 'steps',
      evalSteps: 3,
      saveStrategy: 'epoch',
      saveSteps: null,
      lrSchedulerKwargs: { num_decay_steps: 10 },
    });
    expect(plan.actions).toEqual({ train: false, evaluate: true, predict: false });
    expect(plan.data.valSize).toBe(0.1);
    expect(planRun({ ...BASE, evaluation_strategy: 'epoch' }).trainingArguments.evalStrategy).toBe('epoch');
  });

  it('plans each method and stage', () => {
    expect(
      planRun({
        ...BASE,
        finetuning_type: 'freeze',
        freeze_trainable_modules: 'mlp',
        freeze_extra_modules: 'norm',
      }).method,
    ).toEqual({
      type: 'freeze',
      options: { trainableLayers: 2, trainableModules: ['mlp'], extraModules: ['norm'] },
    });
    expect(planRun({ ...BASE, finetuning_type: 'full' }).method).toEqual({ type: 'full' });
    expect(planRun({ ...BASE, finetuning_type: 'adapter', adapter_size: 16 }).method).toMatchObject({
      type: 'adapter',
      config: { bottleneck_size: 16 },
    });
    expect(planRun({ ...BASE, adapter_name_or_path: 'saves/old' }).method).toEqual({
      type: 'continue-adapter',
      path: 'saves/old',
    });
    const dora = planRun({ ...BASE, lora_rank: 4, use_dora: true }).method;
    expect(dora).toMatchObject({ type: 'lora', config: { r: 4, lora_alpha: 8, use_dora: true } });
    const pissa = planRun({ ...BASE, pissa_init: true, pissa_iter: -1, pissa_convert: true }).method;
    expect(pissa).toMatchObject({ config: { init_lora_weights: 'pissa' }, pissaConvert: true });
    expect(planRun(BASE).method).not.toHaveProperty('pissaConvert');
    // Without the conversion the saved adapter would fit no saved base: refused, with the fix.
    expect(() => planRun({ ...BASE, pissa_init: true })).toThrow(/pissa_convert: true/);
    expect(() => planRun({ ...BASE, pissa_convert: true })).toThrow(/pissa_convert needs pissa_init/);
    // PEFT's own refusals come back as config problems.
    expect(() => planRun({ ...BASE, use_dora: true, pissa_init: true, pissa_convert: true })).toThrow(
      /use_dora with PiSSA/,
    );
    const scratch = planRun({ ...BASE, train_from_scratch: true });
    expect(scratch.baseModelDirectory).toBe('saves/x/base_model');
    expect(scratch.trainingArguments.modelNameOrPath).toBe('saves/x/base_model');
    expect(planRun({ ...BASE, stage: 'pt' }).data).toMatchObject({ usesTemplate: false, packing: true });
    // SFT packing: off by default, on with packing; neat_packing implies it (as LLaMA-Factory).
    expect(planRun(BASE).data).toMatchObject({ packing: false, neatPacking: false });
    expect(planRun({ ...BASE, packing: true }).data).toMatchObject({ packing: true, neatPacking: false });
    expect(planRun({ ...BASE, neat_packing: true }).data).toMatchObject({ packing: true, neatPacking: true });
    expect(() => planRun({ ...BASE, stage: 'dpo', neat_packing: true })).toThrow(
      /neat_packing is for stage sft only/,
    );
    expect(() => planRun({ ...BASE, stage: 'rm', packing: true })).toThrow(
      /packing: true is for stages pt and sft/,
    );
    expect(planRun({ ...BASE, stage: 'rm' }).task).toEqual({ type: 'reward' });
    expect(
      planRun({ ...BASE, stage: 'kto', pref_beta: 0.2, kto_chosen_weight: 1.5, kto_rejected_weight: 0.5 })
        .task,
    ).toEqual({ type: 'kto', beta: 0.2, desirableWeight: 1.5, undesirableWeight: 0.5, ftx: 0 });
    expect(planRun({ ...BASE, use_dft_loss: true }).task).toEqual({
      type: 'supervised',
      stage: 'sft',
      dft: true,
    });
    expect(planRun(BASE).task).toEqual({ type: 'supervised', stage: 'sft' });
    expect(() => planRun({ ...BASE, stage: 'dpo', use_dft_loss: true })).toThrow(
      /use_dft_loss is for stage sft/,
    );
    const loraPlus = planRun({ ...BASE, loraplus_lr_ratio: 16 }).trainingArguments;
    expect(loraPlus).toMatchObject({ loraplusLrRatio: 16, loraplusLrEmbedding: 1e-6 });
    expect(planRun(BASE).trainingArguments).not.toHaveProperty('loraplusLrRatio');
    expect(() => planRun({ ...BASE, loraplus_lr_ratio: -1 })).toThrow(/loraplus_lr_ratio must be > 0/);
    expect(planRun({ ...BASE, stage: 'dpo', pref_loss: 'simpo', pref_beta: 2 }).task).toEqual({
      type: 'preference',
      loss: 'simpo',
      beta: 2,
      labelSmoothing: 0,
      simpoGamma: 0.5,
      ftx: 0,
    });
  });
});
