import { CausalLM, initializeModel } from '@webtune/nn';
import {
  autograd,
  backward,
  clearTape,
  createDevice,
  type Device,
  gradOf,
  isTracked,
  requiresGrad,
  type Tensor,
  zeroGrad,
} from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bottleneckConfig } from './adapter/adapter-config.js';
import { PeftError } from './errors.js';
import { loadAdapter, saveAdapter } from './files/adapter-files.js';
import { loraConfig } from './lora/lora-config.js';
import { getPeftModel, type PeftConfig, type PeftModel } from './peft-model.js';
import {
  logitsOf,
  maxAbsDifference,
  memoryFolder,
  randomIds,
  TINY_MODELS,
  tinyModel,
} from './testing/models.js';

/** The configurations of the table; each runs on every tiny model. */
const CONFIGS: Record<string, () => PeftConfig> = {
  'LoRA q,v': () => loraConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }),
  'LoRA all-linear, rsLoRA, dropout': () =>
    loraConfig({ r: 4, lora_alpha: 16, target_modules: 'all-linear', use_rslora: true, lora_dropout: 0.1 }),
  'LoRA regex + rank/alpha patterns': () =>
    loraConfig({
      r: 4,
      target_modules: '.*\\.(k_proj|up_proj)',
      rank_pattern: { up_proj: 2 },
      alpha_pattern: { k_proj: 2 },
    }),
  'LoRA gaussian, layer 1 only': () =>
    loraConfig({
      r: 2,
      init_lora_weights: 'gaussian',
      target_modules: ['o_proj', 'down_proj'],
      layers_to_transform: [1],
    }),
  'DoRA all (LLaMA-Factory)': () =>
    loraConfig({ r: 4, lora_alpha: 8, use_dora: true, target_modules: 'all' }),
  'LoRA + modules_to_save lm_head': () =>
    loraConfig({ r: 2, target_modules: ['q_proj'], modules_to_save: ['lm_head'] }),
  'Adapter after attention and MLP (gelu)': () =>
    bottleneckConfig({ bottleneck_size: 4, non_linearity: 'gelu' }),
  'Adapter after MLP only (silu, scaling 0.5)': () =>
    bottleneckConfig({ bottleneck_size: 3, target_modules: ['mlp'], non_linearity: 'silu', scaling: 0.5 }),
};

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

/** Overwrites every adapter tensor with seeded values, as if training had moved them. */
async function perturb(peft: PeftModel, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const [name, tensor] of peft.adapterStateDict()) {
    const current = (await tensor.toArray()) as Float32Array;
    const values = name.endsWith('lora_magnitude_vector')
      ? current.map((v) => v * (1 + 0.3 * (rng.next() - 0.5)))
      : name.includes('modules_to_save') || (!name.includes('lora_') && !name.includes('.adapter.'))
        ? current.map((v) => v + 0.1 * (rng.next() - 0.5))
        : rng.uniform(current.length, -0.5, 0.5);
    device.write(tensor, values);
  }
}

function baseWeights(model: CausalLM): Map<string, Tensor> {
  return new Map(
    [...model.namedParameters()].filter(([name]) => !/lora_|\.adapter\.|modules_to_save/.test(name)),
  );
}

describe('tiny models x adapter configurations', () => {
  for (const modelName of Object.keys(TINY_MODELS) as (keyof typeof TINY_MODELS)[]) {
    for (const [configName, makeConfig] of Object.entries(CONFIGS)) {
      it(`${modelName} / ${configName}`, async () => {
        const input = randomIds(device, TINY_MODELS[modelName].vocabSize, 2, 6, 11);
        const model = tinyModel(device, modelName, 3);
        const baseLogits = await logitsOf(model, input);
        const config = makeConfig();
        const peft = await getPeftModel(model, config, { seed: 7 });
        expect(peft.model).toBe(model);

        // 1. A fresh adapter (B = 0, up-projection = 0, magnitude = ||W||) is the base model.
        expectClose(await logitsOf(peft, input), baseLogits, {
          atol: 1e-5,
          rtol: 1e-5,
          label: 'fresh adapter',
        });

        // 2. After "training" the output moves; disabling adapters gives the base model back.
        await perturb(peft, 21);
        const adapted = await logitsOf(peft, input);
        expect(maxAbsDifference(adapted, baseLogits)).toBeGreaterThan(1e-3);
        expectClose(await peft.withAdaptersDisabled(() => logitsOf(peft, input)), baseLogits, {
          atol: 1e-6,
          label: 'adapters disabled',
        });

        // 3. Merged == unmerged outputs; unmerging restores the base weights.
        const before = new Map(
          await Promise.all(
            [...baseWeights(model)].map(
              async ([name, t]) => [name, (await t.toArray()) as Float32Array] as const,
            ),
          ),
        );
        if (config.peft_type === 'LORA') {
          peft.merge();
          expect(peft.mergedAdapters()).toEqual(['default']);
          expectClose(await logitsOf(peft, input), adapted, { atol: 2e-4, rtol: 2e-4, label: 'merged' });
          peft.unmerge();
          expectClose(await logitsOf(peft, input), adapted, { atol: 2e-4, rtol: 2e-4, label: 'unmerged' });
          for (const [name, tensor] of baseWeights(model)) {
            expectClose((await tensor.toArray()) as Float32Array, before.get(name)!, {
              atol: 2e-6,
              label: name,
            });
          }
        } else {
          expect(() => peft.merge()).toThrow(/cannot be merged/);
        }

        // 4. Save -> load into a fresh copy of the base model: identical logits.
        const folder = memoryFolder();
        await saveAdapter(peft, folder.sink);
        const reloaded = await loadAdapter(tinyModel(device, modelName, 3), folder.source());
        expect(await logitsOf(reloaded, input)).toEqual(adapted);
        reloaded.model.dispose();

        // 5. The summary counts what trains.
        const trainable = peft.trainableParameters();
        const summary = peft.summary();
        expect(summary.trainableParameters).toBe(trainable.reduce((n, [, t]) => n + t.size, 0));
        expect(summary.optimizerStateBytes).toBe(8 * summary.trainableParameters);
        expect(summary.trainablePercent).toBeLessThan(100);
        model.dispose();
      });

      it(`${modelName} / ${configName}: gradients reach the adapter's tensors and nothing else`, async () => {
        const model = tinyModel(device, modelName, 3);
        const peft = await getPeftModel(model, makeConfig(), { seed: 7 });
        await perturb(peft, 21);
        const trainable = peft.markTrainable();
        expect(trainable.map(([, t]) => t)).toEqual(peft.trainableParameters().map(([, t]) => t));
        const vocab = TINY_MODELS[modelName].vocabSize;
        const input = randomIds(device, vocab, 2, 6, 11);
        const labels = randomIds(device, vocab, 2, 6, 99);
        peft.train(); // dropout (where configured) is recorded too
        const logits = peft.forward(input);
        peft.eval();
        if (!isTracked(logits)) {
          throw new Error(
            "@webtune/nn's forward did not record onto the autograd tape: its functional.ts must call the autograd ops " +
              "and models/llama.ts must reshape activations through them (the adapter layers' own ops do record)",
          );
        }
        const { loss } = autograd.crossEntropy(autograd.reshape(logits, [12, vocab]), labels.reshape([12]));
        backward(loss);
        const trainableSet = new Set(trainable.map(([, t]) => t));
        for (const [name, tensor] of model.namedParameters()) {
          const grad = gradOf(tensor);
          if (trainableSet.has(tensor)) {
            expect(grad, `${name} should have a gradient`).not.toBeNull();
            const values = (await grad!.toArray()) as Float32Array;
            expect(values.every(Number.isFinite), name).toBe(true);
            expect(
              values.some((v) => v !== 0),
              `${name}: gradient is all zero`,
            ).toBe(true);
          } else {
            expect(grad, `${name} is frozen`).toBeNull();
          }
        }
        zeroGrad(trainable.map(([, t]) => t));
        for (const [, t] of trainable) requiresGrad(t, false);
        model.dispose();
      });
    }
  }
});

describe('several named adapters, switching, unloading', () => {
  it('keeps one active adapter, switches, disables, deletes, and unloads back to Hugging Face names', async () => {
    const input = randomIds(device, TINY_MODELS.llama.vocabSize, 2, 5, 3);
    const model = tinyModel(device, 'llama', 4);
    const names = [...model.namedParameters()].map(([name]) => name);
    const base = await logitsOf(model, input);
    const peft = await getPeftModel(model, loraConfig({ r: 2, target_modules: ['q_proj', 'v_proj'] }), {
      seed: 1,
    });
    await peft.addAdapter('second', loraConfig({ r: 3, target_modules: 'all-linear' }), { seed: 2 });
    await peft.addAdapter('third', bottleneckConfig({ bottleneck_size: 2 }), { seed: 3 });
    expect(peft.adapterNames).toEqual(['default', 'second', 'third']);
    // The bottleneck blocks now wrap self_attn; LoRA tensors keep their Hugging Face names.
    expect([...peft.adapterStateDict('default').keys()]).toContain(
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
    );
    // A LoRA added after the blocks finds the layers inside them by the same names.
    await peft.addAdapter('fourth', loraConfig({ r: 2, target_modules: ['self_attn.k_proj'] }));
    expect([...peft.adapterStateDict('fourth').keys()]).toEqual([
      'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight',
      'base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight',
      'base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight',
    ]);
    peft.deleteAdapter('fourth');
    expect(peft.activeAdapter).toBe('default');
    await perturb(peft, 1);
    peft.setAdapter('second');
    await perturb(peft, 2);
    peft.setAdapter('third');
    await perturb(peft, 3);

    const outputs = new Map<string, Float32Array>();
    for (const name of peft.adapterNames) {
      peft.setAdapter(name);
      outputs.set(name, await logitsOf(peft, input));
    }
    expect(maxAbsDifference(outputs.get('default')!, outputs.get('second')!)).toBeGreaterThan(1e-3);
    expect(maxAbsDifference(outputs.get('second')!, outputs.get('third')!)).toBeGreaterThan(1e-3);
    // Switching back gives the same output again: the adapters do not interfere.
    peft.setAdapter('default');
    expect(await logitsOf(peft, input)).toEqual(outputs.get('default'));
    peft.setAdapter(null);
    expectClose(await logitsOf(peft, input), base, { atol: 1e-6 });
    peft.setAdapter('second');
    // An async function keeps the adapters off until it settles.
    const disabled = await peft.withAdaptersDisabled(async () => {
      await Promise.resolve();
      return logitsOf(peft, input);
    });
    expectClose(disabled, base, { atol: 1e-6 });
    expect(await logitsOf(peft, input)).toEqual(outputs.get('second'));

    // A merged adapter is unmerged by the disabled pass, as in PEFT.
    peft.merge();
    expectClose(await peft.withAdaptersDisabled(() => logitsOf(peft, input)), base, { atol: 2e-5 });
    expect(peft.mergedAdapters()).toEqual([]);
    expect(() => peft.setAdapter('nope')).toThrow(PeftError);

    // Deleting frees the adapter; layers left without adapters are unwrapped.
    peft.deleteAdapter('second');
    expect(peft.adapterNames).toEqual(['default', 'third']);
    // (the bottleneck adapter wraps self_attn, so the LoRA layers sit under its base_layer)
    expect(
      [...model.namedModules()].filter(([, m]) => m.constructor.name === 'LoraLinear').map(([n]) => n),
    ).toEqual([
      'model.layers.0.self_attn.base_layer.q_proj',
      'model.layers.0.self_attn.base_layer.v_proj',
      'model.layers.1.self_attn.base_layer.q_proj',
      'model.layers.1.self_attn.base_layer.v_proj',
    ]);
    peft.setAdapter('default');
    // (merging and unmerging "second" rounded the base weights: W + d - d is W to float32 round-off)
    expectClose(await logitsOf(peft, input), outputs.get('default')!, { atol: 2e-5 });

    // mergeAndUnload: the plain model, Hugging Face names, the adapter's output.
    const merged = peft.mergeAndUnload();
    expect([...merged.namedParameters()].map(([name]) => name)).toEqual(names);
    expectClose(await logitsOf(merged, input), outputs.get('default')!, { atol: 2e-4, rtol: 2e-4 });
    merged.dispose();
  });

  it('unload gives the base model back unchanged', async () => {
    const input = randomIds(device, TINY_MODELS.qwen3.vocabSize, 1, 7, 8);
    const model = tinyModel(device, 'qwen3', 5);
    const base = await logitsOf(model, input);
    const peft = await getPeftModel(
      model,
      loraConfig({ target_modules: 'all-linear', use_dora: true, modules_to_save: ['embed_tokens'] }),
    );
    await perturb(peft, 9);
    peft.merge();
    const plain = peft.unload();
    expect(
      [...plain.namedModules()].some(([, m]) => (m as { adapterWrapper?: boolean }).adapterWrapper),
    ).toBe(false);
    expectClose(await logitsOf(plain, input), base, { atol: 2e-5 });
    plain.dispose();
  });

  it('an f16 base model takes a float32 adapter (cast in and out, as PEFT autocasts), and merges', async () => {
    if (!device.hasF16) throw new Error('this adapter lacks shader-f16; run where it has it');
    const input = randomIds(device, TINY_MODELS.llama.vocabSize, 2, 6, 2);
    const reference = tinyModel(device, 'llama', 9);
    const half = initializeModel(new CausalLM(device, TINY_MODELS.llama), {
      seed: 9,
      std: 0.3,
      dtype: 'f16',
    });
    const config = loraConfig({ r: 4, target_modules: 'all-linear', use_dora: true });
    const full = await getPeftModel(reference, config, { seed: 1 });
    const halfPeft = await getPeftModel(half, config, { seed: 1 });
    await perturb(full, 5);
    await perturb(halfPeft, 5);
    expect(halfPeft.adapterStateDict().values().next().value!.dtype).toBe('f32');
    const expected = await logitsOf(full, input);
    const got = await logitsOf(halfPeft, input);
    expectClose(got, expected, { atol: 3e-2, rtol: 3e-2, label: 'f16 base' });
    halfPeft.merge();
    expect(half.getParameterByName('model.layers.0.mlp.up_proj.base_layer.weight')!.dtype).toBe('f16');
    expectClose(await logitsOf(halfPeft, input), expected, { atol: 5e-2, rtol: 5e-2, label: 'f16 merged' });
    reference.dispose();
    half.dispose();
  });

  it('refuses what cannot work, naming the module', async () => {
    const model = tinyModel(device, 'qwen2', 6);
    await expect(
      getPeftModel(model, loraConfig({ target_modules: ['lm_head'], init_lora_weights: 'pissa' })),
    ).rejects.toThrow(/shared with model\.embed_tokens\.weight/);
    await expect(getPeftModel(model, loraConfig({ target_modules: '.*norm' }))).rejects.toThrow(
      /cannot adapt/,
    );
    await expect(getPeftModel(model, loraConfig({ target_modules: ['nothing'] }))).rejects.toThrow(
      /matched no module/,
    );
    // A LoRA on the tied head cannot merge into the shared weight.
    const peft = await getPeftModel(model, loraConfig({ target_modules: ['lm_head'] }));
    expect(() => peft.merge()).toThrow(/tied embeddings/);
    expect([...model.namedModules()].filter(([, m]) => m.constructor.name === 'LoraLinear')).toHaveLength(1);
    model.dispose();
  });
});
