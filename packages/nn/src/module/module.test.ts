import { describe, expect, it } from 'vitest';
import { Module, ModuleList } from './module.js';

class Leaf extends Module {}

class Branch extends Module {
  constructor(children: [string, Module][]) {
    super();
    for (const [name, child] of children) this.addModule(name, child);
  }
}

/** PyTorch's named_modules order, written recursively as the reference. */
function reference(module: Module, prefix = ''): string[] {
  return [
    prefix,
    ...module
      .namedChildren()
      .flatMap(([name, child]) => reference(child, prefix ? `${prefix}.${name}` : name)),
  ];
}

describe('Module.namedModules', () => {
  const tree = new Branch([
    ['embed', new Leaf()],
    [
      'layers',
      new ModuleList([
        new Branch([
          [
            'attn',
            new Branch([
              ['q', new Leaf()],
              ['k', new Leaf()],
            ]),
          ],
          ['mlp', new Leaf()],
        ]),
        new Branch([['attn', new Leaf()]]),
      ]),
    ],
    ['norm', new Leaf()],
  ]);

  it('lists every module depth first, each before its children, in the order they were added', () => {
    const names = [...tree.namedModules()].map(([name]) => name);
    expect(names).toEqual(reference(tree));
    expect(names).toEqual([
      '',
      'embed',
      'layers',
      'layers.0',
      'layers.0.attn',
      'layers.0.attn.q',
      'layers.0.attn.k',
      'layers.0.mlp',
      'layers.1',
      'layers.1.attn',
      'norm',
    ]);
    for (const [name, module] of tree.namedModules()) {
      expect(name === '' ? tree : tree.getSubmodule(name)).toBe(module);
    }
  });

  it('starts the paths at a prefix', () => {
    const names = [...tree.namedModules('model')].map(([name]) => name);
    expect(names).toEqual(reference(tree, 'model'));
    expect(names.slice(0, 3)).toEqual(['model', 'model.embed', 'model.layers']);
  });
});
