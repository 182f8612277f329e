import { DTYPE_BYTES, type DType, type HostArray } from '../tensor/dtype.js';
import { checkShape, formatShape, type Shape, sizeOf } from '../tensor/shape.js';
import type { BufferRange, Chunk, Storage } from '../tensor/storage.js';
import { type Device, Tensor } from '../tensor/tensor.js';
import type { Tuning } from './adapter-class.js';
import { BufferPool } from './buffer-pool.js';
import { CommandRecorder, keepAlive } from './command-recorder.js';
import type { DeviceInfo, DeviceStats, KernelLaunch, MemoryStats } from './device-types.js';
import { DeviceLostError, GpuError, TensorError } from './errors.js';
import { decodeHost, encodeHost } from './host-data.js';
import { type KernelProfile, KernelProfiler, type KernelTime } from './kernel-profiler.js';
import { PipelineCache } from './pipeline-cache.js';
import { TensorLifetime } from './tensor-lifetime.js';

export type { Device } from '../tensor/tensor.js';
export type { Bindable, DeviceInfo, DeviceStats, KernelLaunch, MemoryStats } from './device-types.js';

/**
 * The WebGPU implementation of Device. It composes three concerns, one file each:
 * lifetime (tensor-lifetime.ts: storage, scopes, accounting), caches (pipeline-cache.ts:
 * pipelines and bind groups) and encoding (command-recorder.ts: the pending command buffer,
 * uniform slots, submits and readback). This class checks arguments and device health and
 * routes each call. Create it with `createDevice()`.
 */
export class WebGpuDevice implements Device {
  readonly hasF16: boolean;
  readonly maxBindingBytes: number;
  readonly maxWorkgroupsPerDimension: number;
  readonly stats: DeviceStats = {
    dispatches: 0,
    submits: 0,
    readbacks: 0,
    pipelines: 0,
    bindGroups: 0,
    buffers: 0,
  };
  private readonly pool: BufferPool;
  private readonly lifetime: TensorLifetime;
  private readonly cache: PipelineCache;
  private readonly recorder: CommandRecorder;
  private lostReason: { reason: string; message: string } | null = null;
  private firstError: string | null = null;
  private profileStart: { stats: DeviceStats; at: number; counts: Map<string, number> } | null = null;

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
    this.pool = new BufferPool(
      gpu,
      gpu.limits.maxBufferSize,
      () => this.recorder.pending,
      () => this.stats.buffers++,
    );
    this.lifetime = new TensorLifetime(this.pool, this.maxBindingBytes);
    this.cache = new PipelineCache(
      gpu,
      () => this.stats.pipelines++,
      () => this.stats.bindGroups++,
    );
    this.recorder = new CommandRecorder(
      gpu,
      this.pool,
      tuning.maxDispatchesPerSubmit,
      () => this.stats.submits++,
    );
    gpu.lost.then((info) => {
      this.lostReason = { reason: info.reason, message: info.message };
    });
    gpu.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.firstError ??= event.error.message;
    };
  }

  // ---- tensors ---------------------------------------------------------------------------

  empty<D extends DType>(shape: Shape, dtype: D): Tensor<D> {
    this.assertUsable();
    checkShape(shape);
    if (dtype === 'f16' && !this.hasF16) {
      throw new TensorError(
        `dtype f16 needs the adapter feature shader-f16, which ${this.info.device || this.info.vendor} lacks`,
      );
    }
    // Chunks hold whole rows of the last dimension (a 1-D tensor's rows are single elements).
    const rowElements = shape.length >= 2 ? Math.max(1, shape[shape.length - 1]) : 1;
    const storage = this.lifetime.allocate(sizeOf(shape), DTYPE_BYTES[dtype], rowElements, shape, dtype);
    return new Tensor(this, [...shape], dtype, storage);
  }

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

  write(tensor: Tensor, data: ArrayLike<number>): void {
    tensor.assertLive();
    if (data.length !== tensor.size) {
      throw new TensorError(`write: ${data.length} values for ${tensor.describe()}`);
    }
    // queue.writeBuffer runs before commands not yet submitted: submit them first.
    if (this.recorder.pending) this.flush();
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

  releaseStorage(storage: Storage): void {
    this.lifetime.release(storage);
  }

  track(tensor: Tensor): void {
    this.lifetime.track(tensor);
  }

  untrack(tensor: Tensor): void {
    this.lifetime.untrack(tensor);
  }

  scope<T>(fn: () => T): T {
    return this.lifetime.scope(fn);
  }

  // ---- kernels -----------------------------------------------------------------------------

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
    const compiled = this.cache.pipeline(launch.key, launch.source);
    if (this.recorder.full) this.flush();
    const ranges = launch.bindings.map((b) => ('binding' in b ? b.binding(launch.key) : b));
    const uniform = launch.uniforms
      ? this.recorder.writeUniforms(launch.uniforms.fields, launch.uniforms.values)
      : null;
    const bindGroup = this.cache.bindGroup(launch.key, compiled, ranges, uniform);
    const dynamicOffset = compiled.layout && uniform ? uniform.offset : null;
    this.recorder.dispatch(compiled, bindGroup, dynamicOffset, x, y, z, launch.key);
    this.stats.dispatches++;
    if (this.profileStart) {
      this.profileStart.counts.set(launch.key, (this.profileStart.counts.get(launch.key) ?? 0) + 1);
    }
  }

  copyBuffer(source: BufferRange, target: BufferRange): void {
    this.recorder.copyBuffer(source, target);
  }

  flush(): void {
    this.recorder.flush();
  }

  async sync(): Promise<void> {
    this.flush();
    await keepAlive(this.gpu.queue.onSubmittedWorkDone());
    this.throwIfFailed();
  }

  async read(tensor: Tensor): Promise<HostArray> {
    this.assertUsable();
    const per = DTYPE_BYTES[tensor.dtype];
    const pending = this.recorder.readChunks(
      tensor.storage.chunks,
      (chunk) => elementsIn(chunk, tensor),
      per,
      tensor.size,
    );
    this.stats.readbacks++;
    const raw = await pending;
    this.throwIfFailed();
    return decodeHost(raw, tensor.dtype, tensor.size);
  }

  // ---- profiling ---------------------------------------------------------------------------

  startProfile(): void {
    if (this.profileStart) throw new TensorError('startProfile: a profile is already running; stop it first');
    this.flush();
    this.profileStart = { stats: { ...this.stats }, at: performance.now(), counts: new Map() };
    if (this.gpu.features.has('timestamp-query')) this.recorder.profiler = new KernelProfiler(this.gpu);
  }

  async stopProfile(): Promise<KernelProfile> {
    const start = this.profileStart;
    if (!start) throw new TensorError('stopProfile: no profile is running; call startProfile() first');
    await this.sync();
    const wallMs = performance.now() - start.at;
    const profiler = this.recorder.profiler;
    this.recorder.profiler = null;
    this.profileStart = null;
    const measured = profiler ? await profiler.collect() : null;
    // Without timestamp-query, dispatch counts only (times NaN).
    const counted = (names: (key: string) => string): KernelTime[] => {
      const map = new Map<string, KernelTime>();
      for (const [key, count] of start.counts) {
        const name = names(key);
        const entry = map.get(name) ?? { name, dispatches: 0, totalMs: Number.NaN };
        entry.dispatches += count;
        map.set(name, entry);
      }
      return [...map.values()].sort((a, b) => b.dispatches - a.dispatches);
    };
    return {
      dispatches: this.stats.dispatches - start.stats.dispatches,
      submits: this.stats.submits - start.stats.submits,
      readbacks: this.stats.readbacks - start.stats.readbacks,
      wallMs,
      gpuMs: measured?.gpuMs ?? Number.NaN,
      timed: measured !== null,
      kernels: measured?.kernels ?? counted((key) => key.split(':')[0]),
      keys: measured?.keys ?? counted((key) => key),
      spans: measured?.spans ?? [],
    };
  }

  // ---- state -------------------------------------------------------------------------------

  memory(): MemoryStats {
    return this.lifetime.memory();
  }

  formatMemory(): string {
    const m = this.memory();
    return `live ${formatBytes(m.liveBytes)} in ${m.liveTensors} tensors, peak ${formatBytes(m.peakBytes)}, pooled ${formatBytes(m.pooledBytes)}, allocated ${formatBytes(m.allocatedBytes)}`;
  }

  resetPeak(): void {
    this.lifetime.resetPeak();
  }

  trimPool(): void {
    this.flush();
    this.pool.afterSubmit();
    this.pool.trim();
    this.cache.clearBindGroups();
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
    const message = this.cache.takeCompileError() ?? this.firstError;
    if (message) {
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
