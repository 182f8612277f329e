import { getPeftModel, loraConfig } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from '../checkpoint/training-storage.js';
import { trainablePeftModel } from '../model/trainable-model.js';
import { tinyLlama } from '../testing/toy-model.js';
import { type PpoStepFigures, trainPpo } from './ppo-trainer.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

describe('PPO on a tiny Llama', () => {
  it('a reward for half the vocabulary: the mean reward rises, KL grows from 0, the log has reward and loss', async () => {
    const model = tinyLlama(device, 1);
    const peft = await getPeftModel(
      model,
      loraConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'down_proj', 'up_proj'] }),
      { seed: 2 },
    );
    const queries = Array.from({ length: 16 }, (_, i) => [1 + (i % 5), 2 + (i % 3)]);
    const storage = memoryStorage();
    const result = await trainPpo({
      model,
      trainable: trainablePeftModel(peft),
      // The share of answer tokens from the upper half of the vocabulary.
      reward: async (samples) =>
        samples.map((s) => s.response.filter((id) => id >= 8).length / s.response.length),
      queries,
      args: {
        perDeviceTrainBatchSize: 8,
        maxSteps: 32,
        learningRate: 0.1,
        lrSchedulerType: 'constant',
        loggingSteps: 4,
        seed: 3,
      },
      ppo: { epochs: 2, target: 6, initKlCoefficient: 0.02 },
      generation: { maxNewTokens: 6, temperature: 1, stopTokens: [] },
      padTokenId: 0,
      storage,
    });
    const rewards = result.steps.map((s) => s.reward);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    expect(mean(rewards.slice(-3))).toBeGreaterThan(mean(rewards.slice(0, 3)) + 0.2);
    // Step 1's rollout is the reference itself: KL 0; the coefficient then moves toward the target.
    expect(result.steps[0].kl).toBeCloseTo(0, 4);
    expect(result.steps[0].klCoefficient).toBeLessThan(0.2);
    expect(result.steps.at(-1)!.kl).toBeGreaterThan(0);
    const log = new TextDecoder()
      .decode(await storage.readFile('trainer_log.jsonl'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(log.map((row) => row.current_steps)).toEqual([4, 8, 12, 16, 20, 24, 28, 32]);
    for (const key of ['loss', 'reward', 'lr', 'epoch', 'ppo/kl', 'ppo/kl_coef'])
      expect(typeof log[0][key], key).toBe('number');
    model.dispose();
  });

  it('buffer and accumulation, score norm and whitened rewards: updates per step and finite figures', async () => {
    const model = tinyLlama(device, 1);
    const peft = await getPeftModel(model, loraConfig({ r: 2, lora_alpha: 4, target_modules: ['v_proj'] }), {
      seed: 4,
    });
    const seen: number[] = [];
    const result = await trainPpo({
      model,
      trainable: trainablePeftModel(peft),
      reward: async (samples) => {
        seen.push(samples.length);
        return samples.map((s) => s.response.length + s.response[0]);
      },
      queries: Array.from({ length: 8 }, (_, i) => [1 + i]),
      // 2 x 2 x buffer 2 = 8 answers per PPO step.
      args: { perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2, maxSteps: 2, learningRate: 0.01 },
      ppo: { epochs: 1, bufferSize: 2, scoreNorm: true, whitenRewards: true, target: null },
      generation: { maxNewTokens: 3, temperature: 1, stopTokens: [5] },
      padTokenId: 0,
    });
    expect(seen).toEqual([8, 8]);
    for (const step of result.steps) {
      for (const value of [step.loss, step.policyLoss, step.valueLoss, step.kl])
        expect(Number.isFinite(value)).toBe(true);
      // A fixed KL coefficient (ppo_target null) stays at its start.
      expect(step.klCoefficient).toBe(0.2);
      // Answers end at the stop token (kept) or after 3 tokens.
      expect(step.responseLength).toBeGreaterThanOrEqual(1);
      expect(step.responseLength).toBeLessThanOrEqual(4);
    }
    model.dispose();
  });

  it('saves checkpoints at save_steps; a run killed after one resumes with identical figures, log and weights', async () => {
    const run = async (
      storage: ReturnType<typeof memoryStorage>,
      extra: { resumeFromCheckpoint?: boolean; killAt?: number } = {},
    ) => {
      const model = tinyLlama(device, 1);
      const peft = await getPeftModel(
        model,
        loraConfig({ r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'] }),
        {
          seed: 6,
        },
      );
      try {
        const result = await trainPpo({
          model,
          trainable: trainablePeftModel(peft),
          reward: async (samples) =>
            samples.map((s) => s.response.filter((id) => id >= 8).length / s.response.length),
          // 6 queries, 4 per step: the query order wraps inside step 2 and again at step 3.
          queries: Array.from({ length: 6 }, (_, i) => [1 + i, 2 + (i % 3)]),
          args: {
            perDeviceTrainBatchSize: 2,
            gradientAccumulationSteps: 2,
            maxSteps: 5,
            learningRate: 0.05,
            lrSchedulerType: 'cosine',
            loggingSteps: 1,
            saveSteps: 2,
            seed: 5,
            resumeFromCheckpoint: extra.resumeFromCheckpoint ?? null,
          },
          ppo: { epochs: 2, target: 6, initKlCoefficient: 0.05, scoreNorm: true },
          generation: { maxNewTokens: 4, temperature: 1, stopTokens: [] },
          padTokenId: 0,
          storage,
          onStep: (step) => {
            if (step.step === extra.killAt) throw new Error('simulated kill');
          },
        });
        const weights = await Promise.all(
          [...trainablePeftModel(peft).trainableParameters(), ['v', result.valueHead.weight] as const].map(
            async ([, tensor]) => Array.from((await tensor.toArray()) as Float32Array),
          ),
        );
        return { result, weights };
      } finally {
        model.dispose();
      }
    };
    const reference = await run(memoryStorage());
    const storage = memoryStorage();
    await expect(run(storage, { killAt: 3 })).rejects.toThrow('simulated kill');
    expect(await storage.list('')).toContain('checkpoint-2');
    expect(await storage.list('checkpoint-2')).toEqual(
      expect.arrayContaining(['adapter_model.safetensors', 'adapter_config.json', 'value_head.safetensors']),
    );
    const resumed = await run(storage, { resumeFromCheckpoint: true });
    expect(resumed.result.resumedFrom).toBe('checkpoint-2');
    expect(resumed.result.steps.map((s) => s.step)).toEqual([3, 4, 5]);
    const figures = (steps: PpoStepFigures[]) =>
      steps.map(({ step, reward, loss, kl, klCoefficient, responseLength }) => ({
        step,
        reward,
        loss,
        kl,
        klCoefficient,
        responseLength,
      }));
    expect(figures(resumed.result.steps)).toEqual(figures(reference.result.steps.slice(2)));
    expect(resumed.weights).toEqual(reference.weights);
    const log = new TextDecoder()
      .decode(await storage.readFile('trainer_log.jsonl'))
      .trim()
      .split('\n');
    expect(log.map((line) => JSON.parse(line).current_steps)).toEqual([1, 2, 3, 4, 5]);
  });
});
