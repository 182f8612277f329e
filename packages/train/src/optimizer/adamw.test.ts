import { createDevice, type Device } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('matches torch.optim.AdamW for two steps, with decay only where it applies', async () => {
    const weight = device.fromArray([1, -2], [2], 'f32');
    const bias = device.fromArray([0.5], [1], 'f32');
    const optimizer = new AdamW(
      device,
      [
        ['layer.weight', weight],
        ['layer.bias', bias],
      ],
      { weightDecay: 0.1 },
    );
    expect(optimizer.decayedNames()).toEqual(['layer.weight']);
    const grads = [
      [0.1, 0.2, -0.3],
      [-0.05, 0.4, 0.1],
    ];
    // The same two steps in float64 (torch's formulas).
    const expected = [1, -2, 0.5];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    for (let step = 1; step <= 2; step++) {
      const g = grads[step - 1];
      optimizer.step(
        new Map([
          [weight, device.fromArray(g.slice(0, 2), [2], 'f32')],
          [bias, device.fromArray(g.slice(2), [1], 'f32')],
        ]),
        0.01,
      );
      for (let i = 0; i < 3; i++) {
        const decay = i < 2 ? 0.1 : 0;
        expected[i] *= 1 - 0.01 * decay;
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
        const denominator = Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** step) + 1e-8;
        expected[i] -= (0.01 / (1 - 0.9 ** step)) * (m[i] / denominator);
      }
    }
    const actual = [...(await weight.toArray()), ...(await bias.toArray())];
    for (const [i, value] of actual.entries()) expect(value).toBeCloseTo(expected[i], 6);
    expect(optimizer.stepCount).toBe(2);
    expect(optimizer.stateTensors().map(([name]) => name)).toEqual([
      'layer.weight.exp_avg',
      'layer.weight.exp_avg_sq',
      'layer.bias.exp_avg',
      'layer.bias.exp_avg_sq',
    ]);
    optimizer.dispose();
  });
});
