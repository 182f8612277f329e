import type { BufferRange } from '../tensor/storage.js';

/** A compiled kernel: its pipeline, and the explicit bind group layout read from its WGSL. */
export interface CompiledKernel {
  pipeline: GPUComputePipeline;
  /** Explicit layout with a dynamic-offset uniform; null when the WGSL's bindings could not be read. */
  layout: GPUBindGroupLayout | null;
}

const BIND_GROUP_CACHE_SIZE = 8192;

/** One cached bind group and its key: kernel id, uniform size, (buffer id, offset, size) per range. */
interface CachedBindGroup {
  kernel: number;
  uniformSize: number;
  ranges: number[];
  group: GPUBindGroup;
  /** Another bind group whose key has the same hash. */
  next: CachedBindGroup | null;
}

function sameRanges(
  saved: readonly number[],
  ids: readonly number[],
  ranges: readonly BufferRange[],
): boolean {
  if (saved.length !== ranges.length * 3) return false;
  for (let i = 0; i < ranges.length; i++) {
    if (
      saved[3 * i] !== ids[i] ||
      saved[3 * i + 1] !== ranges[i].offset ||
      saved[3 * i + 2] !== ranges[i].size
    )
      return false;
  }
  return true;
}

const BINDING_DECLARATION =
  /@group\((\d+)\)\s*@binding\((\d+)\)\s*var<\s*(storage|uniform)\s*(?:,\s*(read_write|read)\s*)?>/g;

/** The bind group layout a kernel's WGSL declares (group 0 only), or null to fall back to 'auto'. */
export function bindGroupLayoutEntries(code: string): GPUBindGroupLayoutEntry[] | null {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const match of code.matchAll(BINDING_DECLARATION)) {
    if (match[1] !== '0') return null;
    const binding = Number(match[2]);
    const type: GPUBufferBindingType =
      match[3] === 'uniform' ? 'uniform' : match[4] === 'read_write' ? 'storage' : 'read-only-storage';
    entries.push({
      binding,
      visibility: 4 /* COMPUTE */,
      buffer: { type, hasDynamicOffset: type === 'uniform' },
    });
  }
  const uniforms = entries.filter((e) => e.buffer?.type === 'uniform');
  // Only the layout the prelude writes: storage bindings 0..n-1, then at most one uniform at n.
  if (uniforms.length > 1 || (uniforms.length === 1 && uniforms[0].binding !== entries.length - 1))
    return null;
  if (entries.some((e, i) => e.binding !== i)) return null;
  return entries;
}

/**
 * The device's caches: compiled pipelines by kernel key, and bind groups by the buffers they
 * bind. Both are pure host-side memoisation; clearing them changes speed, never results.
 */
export class PipelineCache {
  private readonly pipelines = new Map<string, CompiledKernel>();
  /** Cached bind groups by the hash of their key; entries with the same hash are chained. */
  private readonly bindGroups = new Map<number, CachedBindGroup>();
  private bindGroupCount = 0;
  private readonly kernelIds = new Map<CompiledKernel, number>();
  /** Scratch for the buffer ids of one lookup. */
  private readonly rangeIds: number[] = [];
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  /** Shader compile errors; reported before the 'invalid pipeline' errors they cause. */
  private compileError: string | null = null;
  private readonly printKernels = readEnv('WEBTUNE_PRINT_WGSL');

  constructor(
    private readonly gpu: GPUDevice,
    /** Called once per newly compiled pipeline (device statistics). */
    private readonly onCompile: () => void,
    /** Called once per bind group created (device statistics). */
    private readonly onBindGroup: () => void = () => {},
  ) {}

  /** The pipeline of `key`, compiling `source()` the first time the key is seen. */
  pipeline(key: string, source: () => string): CompiledKernel {
    let compiled = this.pipelines.get(key);
    if (compiled) return compiled;
    const code = source();
    if (this.printKernels && (this.printKernels === '*' || key.startsWith(this.printKernels))) {
      console.log(`// ---- WGSL of ${key}\n${code}`);
    }
    this.gpu.pushErrorScope('validation');
    const module = this.gpu.createShaderModule({ code, label: key });
    const entries = bindGroupLayoutEntries(code);
    const layout = entries ? this.gpu.createBindGroupLayout({ entries, label: key }) : null;
    const pipeline = this.gpu.createComputePipeline({
      layout: layout ? this.gpu.createPipelineLayout({ bindGroupLayouts: [layout] }) : 'auto',
      compute: { module, entryPoint: 'main' },
      label: key,
    });
    this.gpu.popErrorScope().then((error) => {
      if (error) this.compileError ??= `kernel ${key} failed to compile: ${error.message}`;
    });
    compiled = { pipeline, layout };
    this.pipelines.set(key, compiled);
    this.onCompile();
    return compiled;
  }

  /**
   * Bind groups cost ~20 us of host time each on Dawn: they are cached by the buffers they bind.
   * The uniform slot changes with every dispatch, so it is bound with a dynamic offset, which needs
   * an explicit layout (read from the WGSL's binding declarations).
   */
  bindGroup(
    key: string,
    compiled: CompiledKernel,
    ranges: readonly BufferRange[],
    uniform: { buffer: GPUBuffer; offset: number; size: number } | null,
  ): GPUBindGroup {
    // (Entries are built only where a bind group is created: a cached one costs a key lookup.)
    const entries = (): GPUBindGroupEntry[] =>
      ranges.map((range, binding) => ({
        binding,
        resource: { buffer: range.buffer, offset: range.offset, size: range.size },
      }));
    if (!compiled.layout) {
      const list = entries();
      if (uniform) {
        list.push({
          binding: list.length,
          resource: { buffer: uniform.buffer, offset: uniform.offset, size: uniform.size },
        });
      }
      this.onBindGroup();
      return this.gpu.createBindGroup({ layout: compiled.pipeline.getBindGroupLayout(0), entries: list });
    }
    // The cache key is the kernel, the uniform's size and each range's (buffer, offset, size):
    // hashed to a number and compared field by field, so a hit builds no string and no array.
    const kernel = this.kernelId(compiled);
    const uniformSize = uniform?.size ?? 0;
    const ids = this.rangeIds;
    ids.length = ranges.length;
    let hash = Math.imul(kernel, 0x9e3779b1) ^ uniformSize;
    for (let i = 0; i < ranges.length; i++) {
      const range = ranges[i];
      const id = this.bufferId(range.buffer);
      ids[i] = id;
      hash = Math.imul(hash ^ id, 0x85ebca6b);
      hash = Math.imul(hash ^ range.offset, 0xc2b2ae35);
      hash = Math.imul(hash ^ range.size, 0x27d4eb2f);
    }
    for (let entry = this.bindGroups.get(hash) ?? null; entry; entry = entry.next) {
      if (
        entry.kernel === kernel &&
        entry.uniformSize === uniformSize &&
        sameRanges(entry.ranges, ids, ranges)
      ) {
        return entry.group;
      }
    }
    const list = entries();
    if (uniform) {
      list.push({
        binding: list.length,
        resource: { buffer: uniform.buffer, offset: 0, size: uniform.size },
      });
    }
    // Labelled by the kernel, so Dawn's validation messages name it.
    const group = this.gpu.createBindGroup({ label: key, layout: compiled.layout, entries: list });
    this.onBindGroup();
    if (this.bindGroupCount >= BIND_GROUP_CACHE_SIZE) this.clearBindGroups();
    const saved: number[] = [];
    for (let i = 0; i < ranges.length; i++) saved.push(ids[i], ranges[i].offset, ranges[i].size);
    this.bindGroups.set(hash, {
      kernel,
      uniformSize,
      ranges: saved,
      group,
      next: this.bindGroups.get(hash) ?? null,
    });
    this.bindGroupCount++;
    return group;
  }

  /** Drops the cached bind groups (they hold buffers the pool wants to free). */
  clearBindGroups(): void {
    this.bindGroups.clear();
    this.bindGroupCount = 0;
  }

  private kernelId(compiled: CompiledKernel): number {
    let id = this.kernelIds.get(compiled);
    if (id === undefined) {
      id = this.kernelIds.size + 1;
      this.kernelIds.set(compiled, id);
    }
    return id;
  }

  /** The first shader compile error since the last call, if any. */
  takeCompileError(): string | null {
    const error = this.compileError;
    this.compileError = null;
    return error;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }
}

function readEnv(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}
