import { readFileSync } from 'node:fs';
import { clipByGlobalNorm, createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { learningRateAt } from '../schedule/learning-rate.js';
import { AdamW, excludedFromWeightDecay } from './adamw.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe('AdamW', () => {
  it('leaves norms and biases out of weight decay', () => {
    for (const name of [
      'model.norm.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.post_attention_layernorm.weight',
      'model.layers.0.self_attn.q_norm.weight',
      'model.layers.0.self_attn.q_proj.bias',
      'v_head.summary.bias',
    ]) {
      expect(excludedFromWeightDecay(name), name).toBe(true);
    }
    for (const name of [
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.q_proj.lora_A.default.weight',
      'lm_head.weight',
      'model.layers.1.mlp.down_proj.weight',
    ]) {
      expect(excludedFromWeightDecay(name), name).toBe(false);
    }
  });

  it("matches torch.optim.AdamW driven as Transformers' Trainer drives it: decay groups, clipping, schedule", async () => {
    // tools/golden/trainer_steps.py: five steps of torch.optim.AdamW in float64.
    const golden = JSON.parse(
      readFileSync(new URL('../__fixtures__/adamw-steps.json', import.meta.url), 'utf8'),
    ) as {
      settings: {
        lr: number;
        weight_decay: number;
        max_grad_norm: number;
        warmup_steps: number;
        total_steps: number;
      };
      shapes: Record<string, number[]>;
      initial: Record<string, number[]>;
      steps: {
        learning_rate: number;
        gradients: Record<string, number[]>;
        grad_norm: number;
        parameters: Record<string, number[]>;
      }[];
    };
    const { settings } = golden;
    const names = Object.keys(golden.shapes);
    const parameters = names.map((name) =>
      device.fromArray(golden.initial[name], golden.shapes[name], 'f32'),
    );
    const optimizer = new AdamW(
      device,
      names.map((name, i) => [name, parameters[i]] as [string, (typeof parameters)[number]]),
      { weightDecay: settings.weight_decay },
    );
    expect(optimizer.decayedNames()).toEqual(['layer.weight']);
    let clipped = 0;
    for (const [index, step] of golden.steps.entries()) {
      const learningRate = learningRateAt(index, {
        type: 'linear',
        learningRate: settings.lr,
        totalSteps: settings.total_steps,
        warmupSteps: settings.warmup_steps,
      });
      expect(learningRate).toBeCloseTo(step.learning_rate, 12);
      const gradients = names.map((name) =>
        device.fromArray(step.gradients[name], golden.shapes[name], 'f32'),
      );
      const norm = (await clipByGlobalNorm(gradients, settings.max_grad_norm).toArray())[0];
      expect(Math.abs(norm - step.grad_norm) / step.grad_norm, `step ${index + 1} grad norm`).toBeLessThan(
        1e-6,
      );
      if (step.grad_norm > settings.max_grad_norm) clipped++;
      optimizer.step(new Map(parameters.map((parameter, i) => [parameter, gradients[i]])), learningRate);
      for (const [i, name] of names.entries()) {
        expectClose(await parameters[i].toArray(), step.parameters[name], {
          atol: 2e-6,
          label: `step ${index + 1} ${name}`,
        });
      }
    }
    expect(clipped).toBeGreaterThanOrEqual(2);
    expect(optimizer.stepCount).toBe(5);
    expect(optimizer.stateTensors().map(([name]) => name)).toEqual(
      names.flatMap((name) => [`${name}.exp_avg`, `${name}.exp_avg_sq`]),
    );
    optimizer.dispose();
  });
});
