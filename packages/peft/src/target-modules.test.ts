import { CausalLM, createModelConfig, Linear, type Module } from '@webtune/nn';
import type { Device } from '@webtune/tensors';
import { describe, expect, it } from 'vitest';
import { AdapterBlock } from './adapter/adapter-layer.js';
import { createRuntime } from './adapter-runtime.js';
import { LoraLinear } from './lora/lora-linear.js';
import {
  baseModules,
  findTargets,
  fullMatchPattern,
  isAllLinear,
  layerIndexOf,
  linearSuffixes,
  matchTarget,
  patternKey,
  type TargetSelection,
} from './target-modules.js';

const Q = 'model.layers.0.self_attn.q_proj';
const V1 = 'model.layers.1.self_attn.v_proj';
const DOWN11 = 'model.layers.11.mlp.down_proj';

/** A module tree with slots only (no device): what matching reads. */
function shapeOnlyModel(layers = 2, tied = false): CausalLM {
  const config = createModelConfig({
    hiddenSize: 8,
    intermediateSize: 12,
    numHiddenLayers: layers,
    numAttentionHeads: 2,
    vocabSize: 16,
    tieWordEmbeddings: tied,
  });
  return new CausalLM(undefined as unknown as Device, config);
}

const match = (selection: Partial<TargetSelection>, key: string) =>
  matchTarget({ targetModules: null, ...selection }, key);

describe("PEFT's target matching", () => {
  it('a string is a regular expression that must match the whole name', () => {
    expect(match({ targetModules: '.*\\.q_proj' }, Q)).toBe('target');
    expect(match({ targetModules: '.*(q|v)_proj' }, V1)).toBe('target');
    // Not a search: a bare suffix as a string matches nothing (PEFT behaves the same).
    expect(match({ targetModules: 'q_proj' }, Q)).toBe('none');
    expect(match({ targetModules: '.*q_proj' }, `${Q}.base_layer`)).toBe('none');
    expect(match({ targetModules: 'model\\.layers\\.(0|1)\\..*_proj' }, DOWN11)).toBe('none');
    // Python syntax: named groups and \A / \Z anchors.
    expect(match({ targetModules: '\\A.*\\.(?P<kind>q|k)_proj\\Z' }, Q)).toBe('target');
    expect(fullMatchPattern('(?P<x>a)(?P=x)').test('aa')).toBe(true);
    expect(() => fullMatchPattern('(unclosed')).toThrow(/not a valid regular expression/);
  });

  it('a list matches names equal to an entry or ending with "." + entry', () => {
    expect(match({ targetModules: ['q_proj'] }, Q)).toBe('target');
    expect(match({ targetModules: [Q] }, Q)).toBe('target');
    expect(match({ targetModules: ['self_attn.q_proj'] }, Q)).toBe('target');
    expect(match({ targetModules: ['proj'] }, Q)).toBe('none');
    expect(match({ targetModules: ['_proj'] }, Q)).toBe('none');
    expect(match({ targetModules: [] }, Q)).toBe('none');
  });

  it('layers_to_transform restricts a list to layer indices, by the first number in the path', () => {
    expect(layerIndexOf(DOWN11)).toBe(11);
    expect(layerIndexOf('model.layers.3.mlp.experts.7.w1')).toBe(3);
    expect(layerIndexOf('lm_head')).toBeNull();
    expect(layerIndexOf('transformer.h.2.attn.c_attn', 'h')).toBe(2);
    expect(layerIndexOf('model.layers.2.mlp', ['blocks', 'layers'])).toBe(2);
    expect(layerIndexOf('model.layers.2.mlp', 'blocks')).toBeNull();
    const selection = { targetModules: ['q_proj', 'v_proj', 'down_proj'], layersToTransform: [1, 11] };
    expect(match(selection, Q)).toBe('none');
    expect(match(selection, V1)).toBe('target');
    expect(match(selection, DOWN11)).toBe('target');
    expect(match({ ...selection, layersToTransform: 0 }, Q)).toBe('target');
    // An empty list means no restriction; an exact name is not restricted (PEFT's order of checks).
    expect(match({ ...selection, layersToTransform: [] }, Q)).toBe('target');
    expect(match({ targetModules: [Q], layersToTransform: [5] }, Q)).toBe('target');
    expect(match({ targetModules: ['lm_head'], layersToTransform: [0] }, 'lm_head')).toBe('target');
    expect(match({ targetModules: ['head'], layersToTransform: [0] }, 'model.head')).toBe('none');
  });

  it('exclude_modules and modules_to_save win over targets', () => {
    expect(match({ targetModules: ['q_proj'], excludeModules: [Q] }, Q)).toBe('excluded');
    expect(match({ targetModules: ['q_proj'], excludeModules: ['layers.0.self_attn.q_proj'] }, Q)).toBe(
      'excluded',
    );
    expect(match({ targetModules: '.*_proj', excludeModules: '.*\\.layers\\.0\\..*' }, Q)).toBe('excluded');
    expect(match({ targetModules: '.*_proj', excludeModules: '.*\\.layers\\.0\\..*' }, V1)).toBe('target');
    expect(match({ targetModules: '.*', modulesToSave: ['lm_head'] }, 'lm_head')).toBe('excluded');
    expect(match({ targetModules: '.*', modulesToSave: ['self_attn'] }, Q)).toBe('excluded');
    expect(match({ targetModules: '.*', modulesToSave: ['attn'] }, Q)).toBe('target');
  });

  it('rank_pattern / alpha_pattern keys match the end of the name after a dot, first key first', () => {
    expect(patternKey(['down_proj'], DOWN11)).toBe('down_proj');
    expect(patternKey(['own_proj'], DOWN11)).toBeNull();
    expect(patternKey(['layers\\.11\\..*'], DOWN11)).toBe('layers\\.11\\..*');
    expect(patternKey(['model\\.layers\\.1\\.self_attn\\.v_proj', 'v_proj'], V1)).toBe(
      'model\\.layers\\.1\\.self_attn\\.v_proj',
    );
    // As in Python, a leading ^ still matches at the start (the optional prefix matches nothing).
    expect(patternKey(['^model.*q_proj'], Q)).toBe('^model.*q_proj');
    expect(patternKey(['^layers.*q_proj'], Q)).toBeNull();
    expect(patternKey([], Q)).toBeNull();
  });

  it('all-linear and all stand for every linear layer but the head', () => {
    expect(isAllLinear('all-linear')).toBe(true);
    expect(isAllLinear('ALL-LINEAR')).toBe(true);
    expect(isAllLinear(['all'])).toBe(true);
    expect(isAllLinear('all')).toBe(true);
    expect(isAllLinear(['q_proj'])).toBe(false);
    const model = shapeOnlyModel();
    expect(linearSuffixes(model)).toEqual([
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
  });
});

describe('matching through adapter wrappers', () => {
  it('names stay the Hugging Face names inside wrappers; adapter parts are never targets', () => {
    const model = shapeOnlyModel();
    const runtime = createRuntime();
    const q = model.getSubmodule<Linear>(Q);
    model.setSubmodule(Q, new LoraLinear(q, runtime, Q));
    const attention = model.getSubmodule('model.layers.0.self_attn');
    model.setSubmodule(
      'model.layers.0.self_attn',
      new AdapterBlock(attention as never, 8, runtime, 'model.layers.0.self_attn'),
    );
    const entries = [...baseModules(model)];
    const plain = [...shapeOnlyModel().namedModules()].map(([name]) => name).filter((name) => name);
    expect(entries.map((e) => e.name)).toEqual(plain);
    const q0 = entries.find((e) => e.name === Q)!;
    expect(q0.path).toBe('model.layers.0.self_attn.base_layer.q_proj');
    expect(q0.module).toBeInstanceOf(LoraLinear);
    expect(model.getSubmodule(q0.path)).toBe(q0.module);
    expect(linearSuffixes(model)).toContain('q_proj');
    const found = findTargets(
      model,
      { targetModules: ['q_proj'] },
      (m: Module) => m instanceof Linear || m instanceof LoraLinear,
    );
    expect(found.map((e) => e.name)).toEqual([Q, 'model.layers.1.self_attn.q_proj']);
  });

  it('says what it cannot adapt, and shows real names when nothing matches', () => {
    const model = shapeOnlyModel();
    expect(() =>
      findTargets(model, { targetModules: '.*layernorm' }, (m: Module) => m instanceof Linear),
    ).toThrow(/matched "model\.layers\.0\.input_layernorm" \(a RMSNorm\), which this method cannot adapt/);
    expect(() => findTargets(model, { targetModules: ['c_attn'] }, () => true)).toThrow(
      /matched no module of the model; module names look like model\.layers\.0\.self_attn/,
    );
    expect(() =>
      findTargets(model, { targetModules: ['lm_head'], excludeModules: ['lm_head'] }, () => true),
    ).toThrow(/1 were excluded/);
  });
});
