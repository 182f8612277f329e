import { describe, expect, it } from 'vitest';
import { type CompiledKernel, PipelineCache } from './pipeline-cache.js';

/** A GPUDevice stand-in that records the bind groups it is asked for. */
function fakeDevice() {
  const created: GPUBindGroupDescriptor[] = [];
  const gpu = {
    createBindGroup(descriptor: GPUBindGroupDescriptor) {
      created.push(descriptor);
      return { label: `group ${created.length}` } as unknown as GPUBindGroup;
    },
  } as unknown as GPUDevice;
  return { gpu, created };
}

const kernel = (name: string): CompiledKernel => ({
  pipeline: { label: name } as unknown as GPUComputePipeline,
  layout: { label: name } as unknown as GPUBindGroupLayout,
});
const buffer = (name: string) => ({ label: name }) as unknown as GPUBuffer;

describe('PipelineCache.bindGroup', () => {
  it('creates a bind group once per kernel, uniform size and (buffer, offset, size) of each range', () => {
    const { gpu, created } = fakeDevice();
    const cache = new PipelineCache(gpu, () => {});
    const a = kernel('a');
    const b = kernel('b');
    const [x, y] = [buffer('x'), buffer('y')];
    const uniform = { buffer: buffer('u'), offset: 512, size: 32 };
    const ranges = [
      { buffer: x, offset: 0, size: 64 },
      { buffer: y, offset: 256, size: 64 },
    ];
    const first = cache.bindGroup('a', a, ranges, uniform);
    // The same key (fresh range objects, another uniform slot) hits.
    expect(
      cache.bindGroup(
        'a',
        a,
        ranges.map((r) => ({ ...r })),
        { ...uniform, offset: 768 },
      ),
    ).toBe(first);
    expect(created).toHaveLength(1);
    // The group binds the uniform at offset 0: the slot travels as the dynamic offset.
    expect(created[0].entries).toEqual([
      { binding: 0, resource: { buffer: x, offset: 0, size: 64 } },
      { binding: 1, resource: { buffer: y, offset: 256, size: 64 } },
      { binding: 2, resource: { buffer: uniform.buffer, offset: 0, size: 32 } },
    ]);
    // Any part of the key that differs misses.
    const variants: [CompiledKernel, { buffer: GPUBuffer; offset: number; size: number }[], number][] = [
      [b, ranges, 32],
      [a, ranges, 48],
      [a, [ranges[1], ranges[0]], 32],
      [a, [{ ...ranges[0], offset: 256 }, ranges[1]], 32],
      [a, [{ ...ranges[0], size: 128 }, ranges[1]], 32],
      [a, [ranges[0]], 32],
      [a, [ranges[0], { ...ranges[1], buffer: x }], 32],
    ];
    const groups = new Set([first]);
    for (const [compiled, list, size] of variants) {
      groups.add(cache.bindGroup('k', compiled, list, { ...uniform, size }));
    }
    expect(groups.size).toBe(1 + variants.length);
    expect(created).toHaveLength(1 + variants.length);
    // ...and each of them hits afterwards.
    for (const [compiled, list, size] of variants) cache.bindGroup('k', compiled, list, { ...uniform, size });
    expect(created).toHaveLength(1 + variants.length);
  });

  it('keeps many bind groups apart and starts over after clearBindGroups', () => {
    const { gpu, created } = fakeDevice();
    const cache = new PipelineCache(gpu, () => {});
    const a = kernel('a');
    const buffers = Array.from({ length: 50 }, (_, i) => buffer(`b${i}`));
    const groups = new Map<string, GPUBindGroup>();
    for (let i = 0; i < buffers.length; i++) {
      for (let offset = 0; offset < 4096; offset += 256) {
        const group = cache.bindGroup('a', a, [{ buffer: buffers[i], offset, size: 256 }], null);
        groups.set(`${i}:${offset}`, group);
      }
    }
    expect(created).toHaveLength(800);
    expect(new Set(groups.values()).size).toBe(800);
    for (let i = 0; i < buffers.length; i++) {
      for (let offset = 0; offset < 4096; offset += 256) {
        expect(cache.bindGroup('a', a, [{ buffer: buffers[i], offset, size: 256 }], null)).toBe(
          groups.get(`${i}:${offset}`),
        );
      }
    }
    expect(created).toHaveLength(800);
    cache.clearBindGroups();
    cache.bindGroup('a', a, [{ buffer: buffers[0], offset: 0, size: 256 }], null);
    expect(created).toHaveLength(801);
  });
});
