import { Linear, Module } from '@webtune/nn';
import { clearTape, createDevice, type Device, type Tensor } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PeftError } from '../errors.js';
import { loadAdapter, saveAdapter } from '../files/adapter-files.js';
import * as F from '../functional.js';
import { loraConfig } from '../lora/lora-config.js';
import { ModuleDict, ParameterModule } from '../modules.js';
import { getPeftModel } from '../peft-model.js';
import { findTargets } from '../target-modules.js';
import { logitsOf, maxAbsDifference, memoryFolder, randomIds, tinyModel } from '../testing/models.js';
import type { InjectedLayer, MethodConfig, PeftMethod } from './peft-method.js';
import { BUILT_IN_METHODS, DEFAULT_METHODS, PeftMethodRegistry } from './registry.js';

/*
 * A method that exists only in this test, added through a registry: no change to peft-model.ts
 * or the adapter files. It scales the outputs of its target linears: y = base(x) * (1 + s), one
 * trained vector s [out] per module, stored as `<module>.output_scale.weight`.
 */

interface OutputScaleConfig extends MethodConfig {
  peft_type: 'OUTPUT_SCALE';
  target_modules: string[];
}

class OutputScaleLinear extends Module implements InjectedLayer {
  readonly adapterWrapper = true;
  readonly wrappedChildName = 'base_layer';
  constructor(
    base: Linear,
    private readonly runtime: { activeAdapter: string | null; disabled: boolean },
  ) {
    super();
    this.addModule('base_layer', base);
    this.addModule('output_scale', new ModuleDict());
  }
  get baseLayer(): Linear {
    return this.child<Linear>('base_layer');
  }
  private scales(): ModuleDict {
    return this.child<ModuleDict>('output_scale');
  }
  adapterNames(): string[] {
    return [...this.scales().keys()];
  }
  hasAdapter(name: string): boolean {
    return this.scales().get(name) !== undefined;
  }
  addAdapter(name: string, scale: Tensor): void {
    this.scales()
      .set(name, new ParameterModule({ weight: scale.shape }))
      .setParameterByName('weight', scale);
  }
  adapterTensors(name: string): [string, Tensor][] {
    return [['output_scale.weight', this.scales().get(name)!.getParameterByName('weight')!]];
  }
  deleteAdapter(name: string): void {
    const entry = this.scales().get(name);
    if (!entry) return;
    entry.dispose();
    this.setSubmodule('output_scale', this.scales().without(name));
  }
  release(): void {
    for (const name of this.adapterNames()) this.deleteAdapter(name);
  }
  forward(x: Tensor): Tensor {
    const output = this.baseLayer.forward(x);
    const name = this.runtime.activeAdapter;
    if (this.runtime.disabled || name === null || !this.hasAdapter(name)) return output;
    const scale = this.scales().get(name)!.getParameterByName('weight')!;
    return F.mul(output, F.add(scale, 1));
  }
}

const OUTPUT_SCALE: PeftMethod<OutputScaleConfig> = {
  peftType: 'OUTPUT_SCALE',
  parseConfig(json, fileName = 'adapter_config.json') {
    if (!Array.isArray(json.target_modules))
      throw new PeftError(`${fileName}: target_modules must be a list`);
    return {
      peft_type: 'OUTPUT_SCALE',
      target_modules: json.target_modules as string[],
      modules_to_save: null,
    };
  },
  configToJson: (config) => ({ ...config }),
  plan({ model, device, runtime, adapterName }, config) {
    const targets = findTargets(
      model,
      {
        targetModules: config.target_modules,
        excludeModules: null,
        layersToTransform: null,
        layersPattern: null,
      },
      (module) => module instanceof Linear || module instanceof OutputScaleLinear,
    );
    const outOf = (path: string) => {
      const module = model.getSubmodule(path);
      return (module instanceof OutputScaleLinear ? module.baseLayer : (module as Linear)).outFeatures;
    };
    return {
      config,
      modules: targets.map(({ name, path }) => ({ name, tensors: [['output_scale.weight', [outOf(path)]]] })),
      async inject(tensorsFor) {
        for (const { name, path } of targets) {
          const existing = model.getSubmodule(path);
          const layer =
            existing instanceof OutputScaleLinear
              ? existing
              : new OutputScaleLinear(existing as Linear, runtime);
          if (layer !== existing) model.setSubmodule(path, layer);
          const scale =
            tensorsFor?.(name).get('output_scale.weight') ??
            device.fromArray(new Float32Array(outOf(path)), [outOf(path)], 'f32').keep();
          layer.addAdapter(adapterName, scale);
        }
        return undefined;
      },
    };
  },
  isLayer: (module): module is InjectedLayer => module instanceof OutputScaleLinear,
  mergeable: false,
};

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

describe('PEFT method registry', () => {
  it('lists the built-in methods and refuses unknown or repeated peft_types', () => {
    expect(DEFAULT_METHODS.peftTypes).toEqual(['LORA', 'BOTTLENECK']);
    expect(() => DEFAULT_METHODS.method('IA3')).toThrow(
      /peft_type "IA3" is not supported \(LORA, BOTTLENECK\)/,
    );
    expect(() => new PeftMethodRegistry().register(BUILT_IN_METHODS[0])).toThrow(/already registered/);
  });

  it('adds, trains, saves and loads a method registered from outside the package files', async () => {
    const methods = new PeftMethodRegistry().register(OUTPUT_SCALE);
    const config: OutputScaleConfig = {
      peft_type: 'OUTPUT_SCALE',
      target_modules: ['lm_head'],
      modules_to_save: null,
    };
    const input = randomIds(device, 32);
    const base = await logitsOf(tinyModel(device, 'llama'), input);

    const peft = await getPeftModel(tinyModel(device, 'llama'), config, { methods });
    expect(peft.adapterLayers().map((entry) => entry.name)).toEqual(['lm_head']);
    expect(peft.trainableParameters().map(([name]) => name)).toEqual(['lm_head.output_scale.default.weight']);
    // A zero scale leaves the model as it was; a scale of 0.5 multiplies every logit by 1.5.
    expect(maxAbsDifference(await logitsOf(peft.model, input), base)).toBe(0);
    const [[key, scale]] = [...peft.adapterStateDict()];
    expect(key).toBe('base_model.model.lm_head.output_scale.weight');
    device.write(scale, new Float32Array(scale.size).fill(0.5));
    const scaled = await logitsOf(peft.model, input);
    expect(
      maxAbsDifference(
        scaled,
        base.map((v) => v * 1.5),
      ),
    ).toBeLessThan(1e-5);
    expect(() => peft.merge()).toThrow(/OUTPUT_SCALE adapter, which cannot be merged/);

    const folder = memoryFolder();
    await saveAdapter(peft, folder.sink);
    const loaded = await loadAdapter(tinyModel(device, 'llama'), folder.source(), { methods });
    expect(loaded.config()).toEqual(config);
    expect(maxAbsDifference(await logitsOf(loaded.model, input), scaled)).toBe(0);
    // Without the method registered, the same folder is refused by name.
    await expect(loadAdapter(tinyModel(device, 'llama'), folder.source())).rejects.toThrow(
      /peft_type "OUTPUT_SCALE" is not supported \(LORA, BOTTLENECK\)/,
    );
    expect(loaded.unload().getSubmodule('lm_head')).toBeInstanceOf(Linear);
  });

  it('keeps LoRA working through the registry (merge equals unmerged outputs)', async () => {
    const input = randomIds(device, 32);
    const peft = await getPeftModel(
      tinyModel(device, 'llama'),
      loraConfig({ r: 2, target_modules: ['q_proj'], init_lora_weights: false }),
    );
    const unmerged = await logitsOf(peft.model, input);
    peft.merge();
    expect(maxAbsDifference(await logitsOf(peft.model, input), unmerged)).toBeLessThan(1e-4);
  });
});
