import { createDevice, type Device, gradOf, isTracked } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModel } from '../testing/models.js';
import { summarizeTrainable } from '../trainable.js';
import { freezeModel, freezeTrainableNames, fullFineTuning, selectFreezeTrainable } from './freeze.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

describe("freeze fine-tuning (LLaMA-Factory's freeze_trainable_layers / _modules / extra_modules)", () => {
  it('trains the last N layers, the first |N|, or some modules of them, plus extra modules', () => {
    const model = tinyModel(device, 'qwen3', 1); // 3 layers, tied head
    const layersOf = (names: string[]) => [
      ...new Set(names.map((n) => n.match(/layers\.(\d+)\./)?.[1] ?? n)),
    ];
    expect(layersOf(freezeTrainableNames(model))).toEqual(['1', '2']);
    expect(layersOf(freezeTrainableNames(model, { trainableLayers: -1 }))).toEqual(['0']);
    expect(layersOf(freezeTrainableNames(model, { trainableLayers: 10 }))).toEqual(['0', '1', '2']);
    const mlp = freezeTrainableNames(model, { trainableLayers: 1, trainableModules: ['mlp'] });
    expect(mlp).toEqual([
      'model.layers.2.mlp.gate_proj.weight',
      'model.layers.2.mlp.up_proj.weight',
      'model.layers.2.mlp.down_proj.weight',
    ]);
    const extra = freezeTrainableNames(model, {
      trainableLayers: 1,
      trainableModules: ['self_attn'],
      extraModules: ['norm'],
    });
    expect(extra).toContain('model.norm.weight');
    expect(extra).toContain('model.layers.2.self_attn.q_norm.weight');
    expect(extra).not.toContain('model.layers.2.input_layernorm.weight');
    expect(() => freezeTrainableNames(model, { trainableModules: ['attention'] })).toThrow(
      /choose from self_attn, mlp/,
    );
    expect(() => freezeTrainableNames(model, { extraModules: ['lm_head'] })).toThrow(/embed_tokens/);
    expect(() => freezeTrainableNames(model, { trainableLayers: 0 })).toThrow(/non-zero/);
    expect(() => selectFreezeTrainable(['lm_head.weight'])).toThrow(/no decoder layers/);
    model.dispose();
  });

  it('marks the chosen parameters for gradients and freezes the rest; full marks everything', () => {
    const model = tinyModel(device, 'llama', 2);
    const trainable = freezeModel(model, { trainableLayers: 1, extraModules: ['lm_head'] });
    const chosen = new Set(trainable.map(([, t]) => t));
    for (const [name, tensor] of model.namedParameters()) {
      expect(isTracked(tensor), name).toBe(chosen.has(tensor));
      expect(gradOf(tensor)).toBeNull();
    }
    const summary = summarizeTrainable(model, chosen);
    expect(summary.trainableParameters).toBe(trainable.reduce((n, [, t]) => n + t.size, 0));
    expect(summary.trainableParameters).toBeLessThan(summary.totalParameters);
    const all = fullFineTuning(model);
    expect(all.length).toBe([...model.namedParameters()].length);
    for (const [, tensor] of model.namedParameters()) expect(isTracked(tensor)).toBe(true);
    expect(
      summarizeTrainable(
        model,
        all.map(([, t]) => t),
      ).trainablePercent,
    ).toBe(100);
    model.dispose();
  });
});
