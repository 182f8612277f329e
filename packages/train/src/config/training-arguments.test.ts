import { describe, expect, it } from 'vitest';
import { resolveTrainingArguments, trainingArgumentsFromLlamaFactory } from './training-arguments.js';

describe('training arguments', () => {
  it('fills defaults and names the key that is wrong', () => {
    const resolved = resolveTrainingArguments({});
    expect(resolved).toMatchObject({
      numTrainEpochs: 3,
      perDeviceTrainBatchSize: 1,
      gradientAccumulationSteps: 1,
      learningRate: 5e-5,
      lrSchedulerType: 'linear',
      maxGradNorm: 1,
      seed: 42,
    });
    expect(() => resolveTrainingArguments({ gradientAccumulationSteps: 0 })).toThrow(
      /gradientAccumulationSteps must be a positive integer, got 0/,
    );
    expect(() => resolveTrainingArguments({ lrSchedulerType: 'polynomial' as never })).toThrow(
      /lrSchedulerType/,
    );
    expect(() => resolveTrainingArguments({ adamBeta2: 1 })).toThrow(/adamBeta2/);
    expect(() => resolveTrainingArguments({ seed: -5 })).toThrow(
      /seed must be an integer in \[0, 2\^32 - 1\]/,
    );
    expect(() => resolveTrainingArguments({ numTrainEpochs: 0 })).toThrow(/numTrainEpochs/);
    expect(resolveTrainingArguments({ numTrainEpochs: 0, maxSteps: 5 }).maxSteps).toBe(5);
  });

  it('maps a LLaMA-Factory config (YAML numbers as strings) and lists the other keys', () => {
    const { args, ignored } = trainingArgumentsFromLlamaFactory({
      model_name_or_path: 'Qwen/Qwen2.5-0.5B',
      stage: 'sft',
      finetuning_type: 'lora',
      per_device_train_batch_size: 1,
      gradient_accumulation_steps: 8,
      learning_rate: '1.0e-4',
      num_train_epochs: 3.0,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.1,
      logging_steps: 10,
      save_steps: 500,
    });
    expect(args).toEqual({
      perDeviceTrainBatchSize: 1,
      gradientAccumulationSteps: 8,
      learningRate: 1e-4,
      numTrainEpochs: 3,
      lrSchedulerType: 'cosine',
      warmupRatio: 0.1,
      loggingSteps: 10,
      saveSteps: 500,
      gradientCheckpointing: true,
      modelNameOrPath: 'Qwen/Qwen2.5-0.5B',
    });
    expect(ignored).toEqual(['stage', 'finetuning_type']);
    // A model name made of digits stays a string.
    expect(trainingArgumentsFromLlamaFactory({ model_name_or_path: '1e5' }).args.modelNameOrPath).toBe('1e5');
    expect(resolveTrainingArguments({}).modelNameOrPath).toBeNull();
    expect(() => resolveTrainingArguments({ modelNameOrPath: 3 as never })).toThrow(/modelNameOrPath/);
    expect(
      trainingArgumentsFromLlamaFactory({ disable_gradient_checkpointing: true }).args.gradientCheckpointing,
    ).toBe(false);
  });
});
