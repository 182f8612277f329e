import { DTYPE_BYTES, type DType, f16BitsToF32, f32ToF16Bits, type HostArray } from '../tensor/dtype.js';
import { checkShape, formatShape, type Shape, sizeOf } from '../tensor/shape.js';
import { type Chunk, rowsPerChunk, Storage } from '../tensor/storage.js';
import { type BufferRange, Tensor } from '../tensor/tensor.js';
import type { AdapterClass, Tuning } from './adapter-class.js';
import { BufferPool, BufferUsage, READBACK_USAGE, STORAGE_USAGE } from './buffer-pool.js';
import { DeviceLostError, GpuError, TensorError } from './errors.js';
import { type UniformField, type UniformValue, uniformLayout, writeUniforms } from './uniforms.js';

/** What the device is and what it offers, as reported by the adapter. */
export interface DeviceInfo {
  backend: 'dawn-node' | 'browser';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  adapterClass: AdapterClass;
  features: string[];
  limits: Record<string, number>;
}

/** One compute dispatch: the kernel's pipeline key, its source, bindings and parameters. */
export interface KernelLaunch {
  /** Kernel name (a constant of KERNELS) plus any variant that changes the generated WGSL. */
  key: string;
  /** Builds the WGSL; called once per key. */
  source: () => string;
  /** Storage bindings in the order of the shader's @binding indices. */
  bindings: readonly (BufferRange | Tensor)[];
  /** Parameters, bound as a uniform after the storage bindings. */
  uniforms?: { fields: readonly UniformField[]; values: Record<string, UniformValue> };
  /** Workgroup counts; build them with `grid()` to stay under maxComputeWorkgroupsPerDimension. */
  workgroups: readonly [number, number?, number?];
}

export interface MemoryStats {
  /** Bytes held by live tensors. */
  liveBytes: number;
  /** Largest liveBytes seen since the device was created or resetPeak() was called. */
  peakBytes: number;
  /** Bytes in freed buffers kept for reuse. */
  pooledBytes: number;
  /** Every byte this device currently holds in GPU buffers. */
  allocatedBytes: number;
  liveTensors: number;
}

export interface DeviceStats {
  dispatches: number;
  submits: number;
  readbacks: number;
  pipelines: number;
}

const UNIFORM_SLOTS = 512;
const BIND_GROUP_CACHE_SIZE = 8192;

interface CompiledKernel {
  pipeline: GPUComputePipeline;
  /** Explicit layout with a dynamic-offset uniform; null when the WGSL's bindings could not be read. */
  layout: GPUBindGroupLayout | null;
}

const BINDING_DECLARATION =
  /@group\((\d+)\)\s*@binding\((\d+)\)\s*var<\s*(storage|uniform)\s*(?:,\s*(read_write|read)\s*)?>/g;

/** The bind group layout a kernel's WGSL declares (group 0 only), or null to fall back to 'auto'. */
function bindGroupLayoutEntries(code: string): GPUBindGroupLayoutEntry[] | null {
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
 * A WebGPU device with the machinery every kernel uses: a pipeline cache, a buffer pool, one
 * command encoder that collects dispatches until the host needs a result, per-submit uniforms,
 * scopes that dispose intermediates, and memory accounting. Create it with `createDevice()`.
 */
export class Device {
  readonly hasF16: boolean;
  /** Bytes one storage binding (and so one tensor chunk) may hold on this device. */
  readonly maxBindingBytes: number;
  readonly maxWorkgroupsPerDimension: number;
  private readonly pool: BufferPool;
  private readonly pipelines = new Map<string, CompiledKernel>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private readonly slotSize: number;
  private readonly uniformHost: ArrayBuffer;
  private readonly uniformView: DataView;
  private readonly uniformBuffer: GPUBuffer;
  private uniformSlotsUsed = 0;
  private readonly scopes: Set<Tensor>[] = [];
  private liveBytes = 0;
  private peakBytes = 0;
  private liveTensors = 0;
  private lostReason: { reason: string; message: string } | null = null;
  private firstError: string | null = null;
  /** Shader compile errors; reported before the 'invalid pipeline' errors they cause. */
  private compileError: string | null = null;
  private readonly printKernels = readEnv('WEBTUNE_PRINT_WGSL');
  readonly stats: DeviceStats = { dispatches: 0, submits: 0, readbacks: 0, pipelines: 0 };

  constructor(
    readonly gpu: GPUDevice,
    readonly info: DeviceInfo,
    readonly tuning: Tuning,
    options: { maxBindingBytes?: number } = {},
  ) {
    this.hasF16 = gpu.features.has('shader-f16');
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    this.maxBindingBytes = Math.floor(Math.min(options.maxBindingBytes ?? limit, limit) / 16) * 16;
    this.maxWorkgroupsPerDimension = gpu.limits.maxComputeWorkgroupsPerDimension;
    this.pool = new BufferPool(gpu, gpu.limits.maxBufferSize);
    this.slotSize = Math.max(256, gpu.limits.minUniformBufferOffsetAlignment);
    this.uniformHost = new ArrayBuffer(this.slotSize * UNIFORM_SLOTS);
    this.uniformView = new DataView(this.uniformHost);
    this.uniformBuffer = gpu.createBuffer({
      size: this.uniformHost.byteLength,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
      label: 'webtune-uniforms',
    });
    gpu.lost.then((info) => {
      this.lostReason = { reason: info.reason, message: info.message };
    });
    gpu.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.firstError ??= event.error.message;
    };
  }

  // ---- tensors ---------------------------------------------------------------------------

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  empty<D extends DType>(shape: Shape, dtype: D): Tensor<D> {
    this.assertUsable();
    checkShape(shape);
    if (dtype === 'f16' && !this.hasF16) {
      throw new TensorError(
        `dtype f16 needs the adapter feature shader-f16, which ${this.info.device || this.info.vendor} lacks`,
      );
    }
    const elements = sizeOf(shape);
    const bytesPerElement = DTYPE_BYTES[dtype];
    // Chunks hold whole rows of the last dimension (a 1-D tensor's rows are single elements).
    const rowElements = shape.length >= 2 ? Math.max(1, shape[shape.length - 1]) : 1;
    const storage = this.allocStorage(
      elements,
      bytesPerElement,
      rowElements,
      `${dtype}${formatShape(shape)}`,
    );
    return new Tensor(this, [...shape], dtype, storage);
  }

  /** A tensor holding `data` (numbers are converted to the dtype). */
  fromArray<D extends DType>(data: ArrayLike<number>, shape: Shape, dtype: D): Tensor<D> {
    if (data.length !== sizeOf(shape)) {
      throw new TensorError(
        `fromArray: ${data.length} values do not fill shape ${formatShape(shape)} (${sizeOf(shape)})`,
      );
    }
    const tensor = this.empty(shape, dtype);
    this.writeChunks(tensor, data);
    return tensor;
  }

  /** Overwrites a tensor's contents from the host, after the work already recorded. */
  write(tensor: Tensor, data: ArrayLike<number>): void {
    tensor.assertLive();
    if (data.length !== tensor.size) {
      throw new TensorError(`write: ${data.length} values for ${tensor.describe()}`);
    }
    // queue.writeBuffer runs before commands not yet submitted: submit them first.
    if (this.pendingDispatches > 0 || this.encoder) this.flush();
    this.writeChunks(tensor, data);
  }

  private writeChunks(tensor: Tensor, data: ArrayLike<number>): void {
    const bytes = encodeHost(data, tensor.dtype);
    const per = DTYPE_BYTES[tensor.dtype];
    for (const chunk of tensor.storage.chunks) {
      const start = chunk.elementOffset * per;
      const length = Math.ceil((elementsIn(chunk, tensor) * per) / 4) * 4;
      if (length === 0) continue;
      const slice = new Uint8Array(length);
      slice.set(bytes.subarray(start, Math.min(start + length, bytes.length)));
      this.gpu.queue.writeBuffer(chunk.buffer, 0, slice);
    }
  }

  private allocStorage(
    elements: number,
    bytesPerElement: number,
    rowElements: number,
    label: string,
  ): Storage {
    const bytes = elements * bytesPerElement;
    const chunks: Chunk[] = [];
    if (bytes <= this.maxBindingBytes) {
      chunks.push({
        buffer: this.pool.acquire(Math.max(bytes, 4), STORAGE_USAGE, label),
        elementOffset: 0,
        elements,
      });
    } else {
      const rowBytes = rowElements * bytesPerElement;
      if (rowBytes > this.maxBindingBytes) {
        throw new TensorError(
          `tensor ${label}: one row of ${rowBytes} bytes exceeds this device's binding limit of ${this.maxBindingBytes} bytes`,
        );
      }
      let rows = rowsPerChunk(rowBytes, this.maxBindingBytes);
      if (rowBytes % 4 !== 0 && rows % 2 === 1 && rows > 1) rows--;
      const perChunk = rows * rowElements;
      for (let offset = 0; offset < elements; offset += perChunk) {
        const count = Math.min(perChunk, elements - offset);
        chunks.push({
          buffer: this.pool.acquire(count * bytesPerElement, STORAGE_USAGE, `${label}#${chunks.length}`),
          elementOffset: offset,
          elements: count,
        });
      }
    }
    const storage = new Storage(chunks, elements, bytesPerElement);
    this.liveBytes += storage.allocatedBytes;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return storage;
  }

  /** @internal Called by Tensor.dispose(). */
  releaseStorage(storage: Storage): void {
    storage.refs--;
    if (storage.refs > 0) return;
    this.liveBytes -= storage.allocatedBytes;
    for (const chunk of storage.chunks) this.pool.release(chunk.buffer);
  }

  /** @internal Called by the Tensor constructor. */
  track(tensor: Tensor): void {
    this.liveTensors++;
    this.scopes[this.scopes.length - 1]?.add(tensor);
  }

  /** @internal */
  untrack(tensor: Tensor): void {
    for (const scope of this.scopes) scope.delete(tensor);
    if (tensor.disposed) this.liveTensors--;
  }

  /**
   * Runs `fn` and disposes every tensor created inside it except those it returns (a tensor,
   * an array, or an object of tensors) or marked with `keep()`. Returned tensors move to the
   * enclosing scope. Async functions are supported; do not interleave two async scopes.
   */
  scope<T>(fn: () => T): T {
    const created = new Set<Tensor>();
    this.scopes.push(created);
    const finish = (result: unknown, failed: boolean) => {
      const index = this.scopes.lastIndexOf(created);
      if (index >= 0) this.scopes.splice(index, 1);
      const kept = failed ? new Set<Tensor>() : collectTensors(result);
      for (const tensor of created) {
        if (kept.has(tensor)) this.scopes[this.scopes.length - 1]?.add(tensor);
        else tensor.dispose();
      }
    };
    let result: T;
    try {
      result = fn();
    } catch (error) {
      finish(undefined, true);
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (value) => {
          finish(value, false);
          return value;
        },
        (error) => {
          finish(undefined, true);
          throw error;
        },
      ) as T;
    }
    finish(result, false);
    return result;
  }

  // ---- kernels -----------------------------------------------------------------------------

  /** Records one compute dispatch into the pending command buffer. */
  dispatch(launch: KernelLaunch): void {
    this.assertUsable();
    const [x, y = 1, z = 1] = launch.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.maxWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new GpuError(
        `kernel ${launch.key}: workgroups [${x}, ${y}, ${z}] exceed ${max} per dimension; use grid()`,
      );
    }
    const compiled = this.pipeline(launch.key, launch.source);
    if (
      this.uniformSlotsUsed >= UNIFORM_SLOTS ||
      this.pendingDispatches >= this.tuning.maxDispatchesPerSubmit
    ) {
      this.flush();
    }
    const ranges = launch.bindings.map((b) => (b instanceof Tensor ? b.binding(launch.key) : b));
    let uniformOffset = -1;
    let uniformSize = 0;
    if (launch.uniforms) {
      uniformSize = uniformLayout(launch.uniforms.fields).size;
      uniformOffset = this.uniformSlotsUsed * this.slotSize;
      writeUniforms(this.uniformView, uniformOffset, launch.uniforms.fields, launch.uniforms.values);
      this.uniformSlotsUsed++;
    }
    const bindGroup = this.bindGroup(launch.key, compiled, ranges, uniformOffset, uniformSize);
    const pass = this.computePass();
    pass.setPipeline(compiled.pipeline);
    if (compiled.layout && uniformOffset >= 0) pass.setBindGroup(0, bindGroup, [uniformOffset]);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.pendingDispatches++;
    this.stats.dispatches++;
  }

  /** Records a buffer-to-buffer copy (sizes and offsets in bytes, multiples of 4). */
  copyBuffer(source: BufferRange, target: BufferRange): void {
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(
      source.buffer,
      source.offset,
      target.buffer,
      target.offset,
      source.size,
    );
  }

  /**
   * Bind groups cost ~20 us of host time each on Dawn: they are cached by the buffers they bind.
   * The uniform slot changes with every dispatch, so it is bound with a dynamic offset, which needs
   * an explicit layout (read from the WGSL's binding declarations).
   */
  private bindGroup(
    key: string,
    compiled: CompiledKernel,
    ranges: readonly BufferRange[],
    uniformOffset: number,
    uniformSize: number,
  ): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = ranges.map((range, binding) => ({
      binding,
      resource: { buffer: range.buffer, offset: range.offset, size: range.size },
    }));
    if (!compiled.layout) {
      if (uniformOffset >= 0) {
        entries.push({
          binding: entries.length,
          resource: { buffer: this.uniformBuffer, offset: uniformOffset, size: uniformSize },
        });
      }
      return this.gpu.createBindGroup({ layout: compiled.pipeline.getBindGroupLayout(0), entries });
    }
    let cacheKey = `${key}|${uniformSize}`;
    for (const range of ranges) cacheKey += `|${this.bufferId(range.buffer)}:${range.offset}:${range.size}`;
    let group = this.bindGroups.get(cacheKey);
    if (!group) {
      if (uniformOffset >= 0) {
        entries.push({
          binding: entries.length,
          resource: { buffer: this.uniformBuffer, offset: 0, size: uniformSize },
        });
      }
      group = this.gpu.createBindGroup({ layout: compiled.layout, entries });
      if (this.bindGroups.size >= BIND_GROUP_CACHE_SIZE) this.bindGroups.clear();
      this.bindGroups.set(cacheKey, group);
    }
    return group;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  private pipeline(key: string, source: () => string): CompiledKernel {
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
    this.stats.pipelines++;
    return compiled;
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.gpu.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Submits everything recorded so far. Does not wait. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformSlotsUsed > 0) {
      this.gpu.queue.writeBuffer(
        this.uniformBuffer,
        0,
        this.uniformHost,
        0,
        this.uniformSlotsUsed * this.slotSize,
      );
    }
    this.gpu.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pendingDispatches = 0;
    this.uniformSlotsUsed = 0;
    this.pool.afterSubmit();
    this.stats.submits++;
  }

  /** Submits and waits until the GPU has finished all recorded work. */
  async sync(): Promise<void> {
    this.flush();
    await keepAlive(this.gpu.queue.onSubmittedWorkDone());
    this.throwIfFailed();
  }

  /** @internal Copies a tensor to the host (Tensor.toArray). A sync point. */
  async read(tensor: Tensor): Promise<HostArray> {
    this.assertUsable();
    const per = DTYPE_BYTES[tensor.dtype];
    const bytes = Math.max(4, Math.ceil((tensor.size * per) / 4) * 4);
    const staging = this.pool.acquire(bytes, READBACK_USAGE, 'readback');
    this.endPass();
    const encoder = this.commandEncoder();
    for (const chunk of tensor.storage.chunks) {
      const length = Math.ceil((elementsIn(chunk, tensor) * per) / 4) * 4;
      if (length > 0) encoder.copyBufferToBuffer(chunk.buffer, 0, staging, chunk.elementOffset * per, length);
    }
    this.flush();
    this.stats.readbacks++;
    await keepAlive(staging.mapAsync(1, 0, bytes));
    const raw = new Uint8Array(bytes);
    raw.set(new Uint8Array(staging.getMappedRange(0, bytes)));
    staging.unmap();
    this.pool.release(staging);
    this.throwIfFailed();
    return decodeHost(raw.buffer, tensor.dtype, tensor.size);
  }

  // ---- state -------------------------------------------------------------------------------

  memory(): MemoryStats {
    return {
      liveBytes: this.liveBytes,
      peakBytes: this.peakBytes,
      pooledBytes: this.pool.pooledBytes + this.pool.pendingBytes,
      allocatedBytes: this.pool.allocatedBytes,
      liveTensors: this.liveTensors,
    };
  }

  /** A one-line memory summary for logs. */
  formatMemory(): string {
    const m = this.memory();
    return `live ${formatBytes(m.liveBytes)} in ${m.liveTensors} tensors, peak ${formatBytes(m.peakBytes)}, pooled ${formatBytes(m.pooledBytes)}, allocated ${formatBytes(m.allocatedBytes)}`;
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Frees pooled buffers back to the driver. */
  trimPool(): void {
    this.flush();
    this.pool.afterSubmit();
    this.pool.trim();
    this.bindGroups.clear();
  }

  destroy(): void {
    this.flush();
    this.gpu.destroy();
  }

  private assertUsable(): void {
    if (this.lostReason)
      throw new DeviceLostError(this.lostReason.reason, this.lostReason.message || 'no detail');
  }

  private throwIfFailed(): void {
    this.assertUsable();
    const message = this.compileError ?? this.firstError;
    if (message) {
      this.compileError = null;
      this.firstError = null;
      throw new GpuError(message);
    }
  }
}

/** Elements of `tensor` held by `chunk`: a prefix view uses only the start of its storage. */
function elementsIn(chunk: Chunk, tensor: Tensor): number {
  return Math.max(0, Math.min(chunk.elements, tensor.size - chunk.elementOffset));
}

/** Splits a workgroup count over x and y so neither exceeds the per-dimension limit. */
export function grid(workgroups: number, max = 65535): [number, number] {
  if (workgroups <= max) return [workgroups, 1];
  const y = Math.ceil(workgroups / max);
  return [Math.ceil(workgroups / y), y];
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function collectTensors(value: unknown, into = new Set<Tensor>(), depth = 0): Set<Tensor> {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 3 && Array.isArray(value)) for (const v of value) collectTensors(v, into, depth + 1);
  else if (
    depth < 3 &&
    value &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
  return into;
}

/**
 * A pending mapAsync or onSubmittedWorkDone does not keep Node's event loop alive; without a
 * timer, a script can exit silently in the middle of a wait.
 */
async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

function encodeHost(data: ArrayLike<number>, dtype: DType): Uint8Array {
  switch (dtype) {
    case 'f32':
      return bytesOf(data instanceof Float32Array ? data : Float32Array.from(data));
    case 'i32':
      return bytesOf(data instanceof Int32Array ? data : Int32Array.from(data));
    case 'u32':
      return bytesOf(data instanceof Uint32Array ? data : Uint32Array.from(data));
    case 'f16': {
      const bits = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) bits[i] = f32ToF16Bits(data[i]);
      return bytesOf(bits);
    }
  }
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function decodeHost(buffer: ArrayBuffer, dtype: DType, size: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer, 0, size);
    case 'i32':
      return new Int32Array(buffer, 0, size);
    case 'u32':
      return new Uint32Array(buffer, 0, size);
    case 'f16': {
      const bits = new Uint16Array(buffer, 0, size);
      const out = new Float32Array(size);
      for (let i = 0; i < size; i++) out[i] = f16BitsToF32(bits[i]);
      return out;
    }
  }
}

function readEnv(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}
