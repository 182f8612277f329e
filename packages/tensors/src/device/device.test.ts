import { Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binary } from '../kernels/binary/binary.js';
import { fillRange, full } from '../kernels/fill/fill.js';
import { arange, zeros } from '../ops/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { classifyAdapter } from './adapter-class.js';
import { sizeClass } from './buffer-pool.js';
import { createDevice } from './create-device.js';
import type { Device } from './device.js';
import { DeviceLostError, TensorError } from './errors.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});

describe('createDevice', () => {
  it('reports the adapter, its class, limits and features', () => {
    expect(device.info.backend).toBe('dawn-node');
    expect(['software', 'integrated', 'discrete']).toContain(device.info.adapterClass);
    expect(device.info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(device.info.limits.maxComputeWorkgroupsPerDimension).toBeGreaterThanOrEqual(65535);
    expect(device.maxBindingBytes).toBeLessThanOrEqual(device.info.limits.maxStorageBufferBindingSize);
    expect(device.info.features.includes('shader-f16')).toBe(device.hasF16);
  });

  it('asks for the adapter limits rather than the spec defaults', () => {
    // The spec default for maxStorageBufferBindingSize is 128 MiB; every adapter seen offers at least that,
    // and the device must carry the adapter's own figure.
    expect(device.gpu.limits.maxStorageBufferBindingSize).toBe(
      device.info.limits.maxStorageBufferBindingSize,
    );
  });

  it('classifies software, integrated and discrete adapters', () => {
    const base = { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false };
    expect(classifyAdapter({ ...base, vendor: 'mesa', device: 'llvmpipe (LLVM 19.1.7, 256 bits)' })).toBe(
      'software',
    );
    expect(classifyAdapter({ ...base, vendor: 'google', architecture: 'swiftshader' })).toBe('software');
    expect(classifyAdapter({ ...base, vendor: 'intel', architecture: 'gen-12lp' })).toBe('integrated');
    expect(classifyAdapter({ ...base, vendor: 'nvidia', architecture: 'ampere' })).toBe('discrete');
  });
});

describe('tensors and memory', () => {
  it('round-trips f32, i32, u32 and f16 data', async () => {
    const values = new Rng(1).uniform(37, -100, 100);
    expect(Array.from(await device.fromArray(values, [37], 'f32').toArray())).toEqual(Array.from(values));
    const ints = new Rng(2).integers(37, -1000, 1000);
    expect(Array.from(await device.fromArray(ints, [37], 'i32').toArray())).toEqual(Array.from(ints));
    expect(Array.from(await device.fromArray([0, 1, 4294967295], [3], 'u32').toArray())).toEqual([
      0, 1, 4294967295,
    ]);
    if (device.hasF16) {
      const f16 = await device.fromArray([0.5, -2, 65504, 1e-8, 1.33333], [5], 'f16').toArray();
      expect(Array.from(f16)).toEqual([0.5, -2, 65504, 0, 1.3330078125]);
    }
  });

  it('reshape is a view sharing storage; -1 is inferred', async () => {
    const t = arange(device, 0, 12);
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 4]);
    expect(v.storage).toBe(t.storage);
    t.dispose();
    // The view keeps the storage alive.
    expect(Array.from(await v.toArray())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(() => v.reshape([5, -1])).toThrow(TensorError);
    v.dispose();
  });

  it('scope disposes intermediates and keeps what it returns', async () => {
    const before = device.memory().liveTensors;
    const kept = device.scope(() => {
      const a = zeros(device, [100]);
      const b = binary('add', a, 1);
      const c = binary('mul', b, 3);
      return { c };
    });
    expect(device.memory().liveTensors).toBe(before + 1);
    expect(Array.from(await kept.c.toArray())).toEqual(new Array(100).fill(3));
    kept.c.dispose();
    expect(device.memory().liveTensors).toBe(before);
  });

  it('async scopes dispose after the promise settles', async () => {
    const before = device.memory().liveTensors;
    const value = await device.scope(async () => {
      const a = full(device, [10], 2, 'f32');
      return (await binary('mul', a, a).toArray())[0];
    });
    expect(value).toBe(4);
    expect(device.memory().liveTensors).toBe(before);
  });

  it('accounts live and peak bytes and reuses freed buffers', async () => {
    await device.sync();
    device.resetPeak();
    const start = device.memory();
    const a = zeros(device, [1 << 20]);
    expect(device.memory().liveBytes - start.liveBytes).toBe(sizeClass(4 << 20));
    const buffer = a.chunks[0].buffer;
    a.dispose();
    expect(device.memory().liveBytes).toBe(start.liveBytes);
    expect(device.memory().peakBytes).toBeGreaterThanOrEqual(start.liveBytes + (4 << 20));
    device.flush(); // freed buffers become reusable once the commands using them are submitted
    const b = zeros(device, [1 << 20]);
    expect(b.chunks[0].buffer).toBe(buffer);
    b.dispose();
    expect(device.formatMemory()).toMatch(/live .* peak .* pooled .* allocated/);
  });

  it('reuses a buffer freed while nothing is recorded at once, without waiting for a submit', async () => {
    const a = device.fromArray(new Float32Array(300).fill(3), [300], 'f32');
    const sum = binary('add', a, 1);
    expect((await sum.toArray())[0]).toBe(4);
    sum.dispose();
    // Everything that used a is submitted: its buffer is free for the next tensor of its size class.
    const buffer = a.chunks[0].buffer;
    a.dispose();
    const b = device.fromArray(new Float32Array(300).fill(7), [300], 'f32');
    expect(b.chunks[0].buffer).toBe(buffer);
    expect((await b.toArray())[299]).toBe(7);
    b.dispose();
  });

  it('hands out the same buffers for the same requests whatever order they were freed in', async () => {
    await device.sync();
    // An uncommon size class, so no other test's freed buffers are in its list.
    const make = () => [0, 1, 2].map(() => device.empty([1234], 'f32'));
    const first = make();
    const original = first.map((t) => t.chunks[0].buffer);
    // Which of the first three buffers each tensor got (GPUBuffers compare by identity only).
    const buffersOf = (tensors: Tensor[]) => tensors.map((t) => original.indexOf(t.chunks[0].buffer));
    for (const t of first) t.dispose(); // oldest first
    const second = make();
    expect(buffersOf(second)).toEqual([0, 1, 2]);
    for (const t of [...second].reverse()) t.dispose(); // newest first
    const third = make();
    expect(buffersOf(third)).toEqual([0, 1, 2]);
    for (const t of [third[1], third[0], third[2]]) t.dispose();
    const fourth = make();
    expect(buffersOf(fourth)).toEqual([0, 1, 2]);
    for (const t of fourth) t.dispose();
  });

  it('gives a scope that runs again the same buffers, so its bind groups are reused (counted)', async () => {
    // Three tensors of one size class per run: a scope disposing oldest-first would hand them back
    // permuted (the pool is last-in first-out) and every dispatch would need a new bind group.
    const run = () =>
      device.scope(async () => {
        const a = device.fromArray(new Float32Array(200).fill(1), [200], 'f32');
        const b = binary('add', a, 2);
        const c = binary('mul', b, a);
        return (await c.toArray())[0];
      });
    expect(await run()).toBe(3);
    const before = { ...device.stats };
    for (let i = 0; i < 3; i++) expect(await run()).toBe(3);
    expect(device.stats.dispatches - before.dispatches).toBe(6);
    expect(device.stats.buffers - before.buffers).toBe(0);
    expect(device.stats.bindGroups - before.bindGroups).toBe(0);
    expect(device.stats.pipelines - before.pipelines).toBe(0);
  });

  it('does not let a reused buffer be overwritten before earlier commands ran', async () => {
    // a is read by a recorded (not yet submitted) dispatch, then disposed; a new upload must not land in a's buffer
    // before that dispatch runs.
    const a = device.fromArray(new Float32Array(256).fill(1), [256], 'f32');
    const out = binary('add', a, 1);
    a.dispose();
    const b = device.fromArray(new Float32Array(256).fill(100), [256], 'f32');
    expect((await out.toArray())[0]).toBe(2);
    expect((await b.toArray())[0]).toBe(100);
  });

  it('prefixView shares storage and reads and writes only its own elements', async () => {
    const cache = device.fromArray(
      Array.from({ length: 24 }, (_, i) => i),
      [1, 6, 4],
      'f32',
    );
    const filled = cache.prefixView([1, 2, 4]);
    expect(filled.storage).toBe(cache.storage);
    expect(Array.from(await filled.toArray())).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    device.write(filled, new Array(8).fill(-1));
    const all = await cache.toArray();
    expect(Array.from(all.slice(0, 8))).toEqual(new Array(8).fill(-1));
    // The rest of the cache is untouched by a write through the view.
    expect(Array.from(all.slice(8))).toEqual(Array.from({ length: 16 }, (_, i) => i + 8));
    expect(() => cache.prefixView([1, 7, 4])).toThrow(/needs 28 elements/);
    filled.dispose();
    expect((await cache.toArray())[23]).toBe(23);
  });

  it('write() lands after the work already recorded', async () => {
    const a = device.fromArray([1, 2, 3, 4], [4], 'f32');
    const doubled = binary('mul', a, 2);
    device.write(a, [10, 20, 30, 40]);
    expect(Array.from(await doubled.toArray())).toEqual([2, 4, 6, 8]);
    expect(Array.from(await a.toArray())).toEqual([10, 20, 30, 40]);
  });

  it('batches many dispatches per submit and waits only on reads', async () => {
    await device.sync();
    const submits = device.stats.submits;
    let x: Tensor = zeros(device, [64]);
    for (let i = 0; i < 100; i++) {
      const next = binary('add', x, 1);
      x.dispose();
      x = next;
    }
    expect(device.stats.submits).toBe(submits);
    expect((await x.toArray())[63]).toBe(100);
    expect(device.stats.submits).toBe(submits + 1);
  });

  it('rejects disposed tensors and bad shapes with clear errors', () => {
    const t = zeros(device, [2]);
    t.dispose();
    expect(() => binary('add', t, 1)).toThrow(/was disposed/);
    expect(() => device.empty([2, -1], 'f32')).toThrow(/non-negative integer/);
    expect(() => device.fromArray([1, 2, 3], [2, 2], 'f32')).toThrow(/do not fill shape/);
  });
});

describe('tensors larger than one storage binding', () => {
  let small: Device;
  beforeAll(async () => {
    // Simulate a 4 KiB binding limit so that chunking happens at test sizes.
    small = await createDevice({ maxBindingBytes: 4096 });
  });
  afterAll(() => small.destroy());

  it('splits by whole rows and round-trips data', async () => {
    const rows = 100;
    const cols = 33; // 132 bytes per row: 31 rows per 4 KiB chunk
    const data = new Rng(3).uniform(rows * cols);
    const t = small.fromArray(data, [rows, cols], 'f32');
    expect(t.chunked).toBe(true);
    expect(t.chunks.length).toBe(Math.ceil(rows / Math.floor(4096 / (cols * 4))));
    for (const chunk of t.chunks) expect(chunk.elements % cols).toBe(0);
    expect(Array.from(await t.toArray())).toEqual(Array.from(data));
    expect(() => t.binding('test')).toThrow(/split in 4 chunks/);
  });

  it('runs elementwise ops and fills chunk by chunk', async () => {
    const t = fillRange(small.empty([1000, 3], 'f32'), 0, 1);
    expect(t.chunked).toBe(true);
    expect(() => arange(small, 0, 3000).reshape([1000, 3])).toThrow(/not whole rows of 3/);
    const out = binary('mul', t, 2);
    const expected = Array.from({ length: 3000 }, (_, i) => 2 * i);
    expect(Array.from(await out.toArray())).toEqual(expected);
  });

  it('refuses a row wider than the binding limit', () => {
    expect(() => small.empty([2, 2000], 'f32')).toThrow(/one row of 8000 bytes exceeds/);
  });
});

describe('device loss', () => {
  it('turns every later use into a DeviceLostError', async () => {
    const lost = await createDevice();
    lost.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(() => lost.empty([4], 'f32')).toThrow(DeviceLostError);
  });
});

describe('kernel errors', () => {
  it('reports the WGSL compile error of a broken kernel, naming the kernel', async () => {
    const broken = await createDevice();
    const t = zeros(broken, [4]);
    broken.dispatch({
      key: 'test-broken-kernel',
      source: () => '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }',
      bindings: [],
      workgroups: [1],
    });
    await expect(t.toArray()).rejects.toThrow(/kernel test-broken-kernel failed to compile.*undefined_name/s);
    broken.destroy();
  });
});
