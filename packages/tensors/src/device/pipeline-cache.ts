import type { BufferRange } from '../tensor/storage.js';

/** A compiled kernel: its pipeline, and the explicit bind group layout read from its WGSL. */
export interface CompiledKernel {
  pipeline: GPUComputePipeline;
  /** Explicit layout with a dynamic-offset uniform; null when the WGSL's bindings could not be read. */
  layout: GPUBindGroupLayout | null;
}

const BIND_GROUP_CACHE_SIZE = 8192;

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
  private readonly bindGroups = new Map<string, GPUBindGroup>();
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
    let cacheKey = `${key}|${uniform?.size ?? 0}`;
    for (const range of ranges) cacheKey += `|${this.bufferId(range.buffer)}:${range.offset}:${range.size}`;
    let group = this.bindGroups.get(cacheKey);
    if (!group) {
      const list = entries();
      if (uniform) {
        list.push({
          binding: list.length,
          resource: { buffer: uniform.buffer, offset: 0, size: uniform.size },
        });
      }
      group = this.gpu.createBindGroup({ layout: compiled.layout, entries: list });
      this.onBindGroup();
      if (this.bindGroups.size >= BIND_GROUP_CACHE_SIZE) this.bindGroups.clear();
      this.bindGroups.set(cacheKey, group);
    }
    return group;
  }

  /** Drops the cached bind groups (they hold buffers the pool wants to free). */
  clearBindGroups(): void {
    this.bindGroups.clear();
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
