import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from './adamw.js';
import { loraPlusGroupOf, loraPlusLearningRateScale } from './lora-plus.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe('LoRA+', () => {
  it("puts parameters in LLaMA-Factory's groups: lora_B and 1-D at ratio x lr, lora_embedding_B apart", () => {
    const matrix = { rank: 2 };
    const vector = { rank: 1 };
    const prefix = 'base_model.model.model.layers.0.self_attn.q_proj';
    expect(loraPlusGroupOf(`${prefix}.lora_A.default.weight`, matrix)).toBe('lora_a');
    expect(loraPlusGroupOf(`${prefix}.lora_B.default.weight`, matrix)).toBe('lora_b');
    expect(loraPlusGroupOf(`${prefix}.lora_magnitude_vector.default.weight`, vector)).toBe('lora_b');
    expect(loraPlusGroupOf('base_model.model.model.embed_tokens.lora_embedding_B.default', matrix)).toBe(
      'embedding',
    );
    expect(loraPlusGroupOf('base_model.model.model.embed_tokens.lora_embedding_A.default', matrix)).toBe(
      'lora_a',
    );
    const scale = loraPlusLearningRateScale({ learningRate: 1e-4, ratio: 16, embeddingLearningRate: 1e-6 });
    expect(scale(`${prefix}.lora_B.default.weight`, matrix)).toBe(16);
    expect(scale(`${prefix}.lora_A.default.weight`, matrix)).toBe(1);
    expect(scale('x.lora_embedding_B.default', matrix)).toBeCloseTo(0.01, 12);
    expect(() => loraPlusLearningRateScale({ learningRate: 1e-4, ratio: 0 })).toThrow(/loraplus_lr_ratio/);
  });

  it('AdamW steps each group at its own rate, decay by the usual rule (two steps, float64 reference)', async () => {
    const lr = 0.01;
    const ratio = 8;
    const weightDecay = 0.1;
    const names = ['q.lora_A.default.weight', 'q.lora_B.default.weight', 'v_head.summary.bias'];
    const starts = [[1, -2], [0.5, 0.25], [0.3]];
    const tensors = starts.map((values) => device.fromArray(values, [values.length], 'f32'));
    // Shaped [2] the first two are 1-D; the rule keys on the name for lora_A/B, so give them rank 2.
    const shaped = tensors.map((t, i) => (i < 2 ? t.reshape([1, 2]) : t));
    const optimizer = new AdamW(
      device,
      names.map((name, i) => [name, shaped[i]] as [string, (typeof shaped)[number]]),
      { weightDecay, learningRateScale: loraPlusLearningRateScale({ learningRate: lr, ratio }) },
    );
    const grads = [
      [[0.1, -0.2], [0.3, 0.05], [-0.4]],
      [[-0.05, 0.1], [0.2, -0.1], [0.2]],
    ];
    const groupLr = [lr, lr * ratio, lr * ratio];
    const decay = [weightDecay, weightDecay, 0];
    const expected = starts.map((values) => [...values]);
    const m = starts.map((values) => values.map(() => 0));
    const v = starts.map((values) => values.map(() => 0));
    for (let step = 1; step <= 2; step++) {
      optimizer.step(
        new Map(shaped.map((t, i) => [t, device.fromArray(grads[step - 1][i], t.shape, 'f32')])),
        lr,
      );
      for (let p = 0; p < 3; p++) {
        for (let j = 0; j < expected[p].length; j++) {
          const g = grads[step - 1][p][j];
          expected[p][j] *= 1 - groupLr[p] * decay[p];
          m[p][j] = 0.9 * m[p][j] + 0.1 * g;
          v[p][j] = 0.999 * v[p][j] + 0.001 * g * g;
          const mHat = m[p][j] / (1 - 0.9 ** step);
          const vHat = v[p][j] / (1 - 0.999 ** step);
          expected[p][j] -= (groupLr[p] * mHat) / (Math.sqrt(vHat) + 1e-8);
        }
      }
    }
    for (let p = 0; p < 3; p++) {
      expectClose(Array.from(await shaped[p].toArray()), expected[p], {
        rtol: 1e-5,
        atol: 1e-7,
        label: names[p],
      });
    }
    optimizer.dispose();
  });
});
