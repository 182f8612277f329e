import type { Tuning } from '../device/adapter-class.js';
import type { DeviceInfo, DeviceStats, KernelLaunch, MemoryStats } from '../device/device-types.js';
import { TensorError } from '../device/errors.js';
import type { KernelProfile } from '../device/kernel-profiler.js';
import { DTYPE_BYTES, type DType, type HostArray } from './dtype.js';
import { checkShape, formatShape, type Shape, sizeOf } from './shape.js';
import type { BufferRange, Chunk, Storage } from './storage.js';

export type { BufferRange } from './storage.js';

let nextId = 1;

/**
 * A WebGPU device as tensors and kernels see it: a pipeline cache, a buffer pool, one command
 * encoder that collects dispatches until the host needs a result, per-submit uniforms, scopes
 * that dispose intermediates, and memory accounting. Create one with `createDevice()`; the
 * implementation is device/device.ts. The contract sits here, beside Tensor, because each names
 * the other: the device makes tensors and a tensor knows its device, and so neither file imports
 * the other's.
 */
export interface Device {
  readonly gpu: GPUDevice;
  readonly info: DeviceInfo;
  readonly tuning: Tuning;
  readonly hasF16: boolean;
  /** Bytes one storage binding (and so one tensor chunk) may hold on this device. */
  readonly maxBindingBytes: number;
  readonly maxWorkgroupsPerDimension: number;
  readonly stats: DeviceStats;

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  empty<D extends DType>(shape: Shape, dtype: D): Tensor<D>;
  /** A tensor holding `data` (numbers are converted to the dtype). */
  fromArray<D extends DType>(data: ArrayLike<number>, shape: Shape, dtype: D): Tensor<D>;
  /** Overwrites a tensor's contents from the host, after the work already recorded. */
  write(tensor: Tensor, data: ArrayLike<number>): void;
  /**
   * Runs `fn` and disposes every tensor created inside it except those it returns (a tensor,
   * an array, or an object of tensors) or marked with `keep()`. Returned tensors move to the
   * enclosing scope. Async functions are supported; do not interleave two async scopes.
   */
  scope<T>(fn: () => T): T;

  /** Records one compute dispatch into the pending command buffer. */
  dispatch(launch: KernelLaunch): void;
  /** Records a buffer-to-buffer copy (sizes and offsets in bytes, multiples of 4). */
  copyBuffer(source: BufferRange, target: BufferRange): void;
  /** Submits everything recorded so far. Does not wait. */
  flush(): void;
  /** Submits and waits until the GPU has finished all recorded work. */
  sync(): Promise<void>;
  /**
   * Starts a kernel profile: until stopProfile(), each dispatch is counted by kernel key and,
   * where the adapter has `timestamp-query`, timed on the GPU (each in its own compute pass,
   * which adds a little time per dispatch). For benchmarks, not for training runs.
   */
  startProfile(): void;
  /** Waits for the recorded work and returns the profile's dispatch counts and GPU times per kernel. */
  stopProfile(): Promise<KernelProfile>;

  memory(): MemoryStats;
  /** A one-line memory summary for logs. */
  formatMemory(): string;
  resetPeak(): void;
  /** Frees pooled buffers back to the driver. */
  trimPool(): void;
  destroy(): void;

  /** @internal Copies a tensor to the host (Tensor.toArray). A sync point. */
  read(tensor: Tensor): Promise<HostArray>;
  /** @internal Called by the Tensor constructor. */
  track(tensor: Tensor): void;
  /** @internal Called by Tensor.keep() and Tensor.dispose(). */
  untrack(tensor: Tensor): void;
  /** @internal Called by Tensor.dispose(). */
  releaseStorage(storage: Storage): void;
}

/**
 * An n-dimensional array on a WebGPU device. Tensors are always contiguous in row-major order;
 * `reshape` is free (a view of the same storage), transposes and slices copy. Dispose a tensor
 * when done, or create it inside `device.scope()`, which disposes what the scope does not return.
 */
export class Tensor<D extends DType = DType> {
  readonly id = nextId++;
  readonly size: number;
  private released = false;

  constructor(
    readonly device: Device,
    readonly shape: Shape,
    readonly dtype: D,
    readonly storage: Storage,
  ) {
    this.size = sizeOf(shape);
    device.track(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get byteLength(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  get disposed(): boolean {
    return this.released;
  }

  get chunked(): boolean {
    return this.storage.chunks.length > 1;
  }

  get chunks(): readonly Chunk[] {
    this.assertLive();
    return this.storage.chunks;
  }

  /** The whole tensor as one binding; throws for a tensor split over several buffers. */
  binding(what = 'this op'): BufferRange {
    this.assertLive();
    if (this.storage.chunks.length > 1) {
      throw new TensorError(
        `${what} needs ${this.describe()} in one storage binding, but it is ${this.byteLength} bytes, above ` +
          `this device's binding limit (${this.device.maxBindingBytes} bytes), and is split in ` +
          `${this.storage.chunks.length} chunks; ops that support chunked tensors: elementwise, embedding, ` +
          `matmul (as the weight operand), adamw, globalNorm`,
      );
    }
    const buffer = this.storage.chunks[0].buffer;
    return { buffer, offset: 0, size: Math.max(4, Math.ceil(this.byteLength / 4) * 4) };
  }

  /** A view with another shape and the same elements (no copy). */
  reshape(shape: Shape): Tensor<D> {
    this.assertLive();
    const resolved = resolveReshape(this.shape, shape);
    if (this.chunked) {
      const row = resolved.length >= 2 ? resolved[resolved.length - 1] : 1;
      const chunks = this.storage.chunks;
      if (chunks.slice(0, -1).some((c) => c.elements % row !== 0)) {
        throw new TensorError(
          `cannot reshape ${this.describe()} to ${formatShape(resolved)}: it is split in chunks of ` +
            `${chunks[0].elements} elements, not whole rows of ${row}`,
        );
      }
    }
    this.storage.refs++;
    return new Tensor(this.device, resolved, this.dtype, this.storage);
  }

  /**
   * A view of the first `sizeOf(shape)` elements with another shape, sharing the storage (no
   * copy): e.g. the filled positions of a preallocated KV cache. Binding it binds only those
   * elements; writes and reads touch only them.
   */
  prefixView(shape: Shape): Tensor<D> {
    this.assertLive();
    checkShape(shape, 'prefixView shape');
    const size = sizeOf(shape);
    if (size > this.size) {
      throw new TensorError(
        `prefixView ${formatShape(shape)} needs ${size} elements, ${this.describe()} has ${this.size}`,
      );
    }
    if (this.chunked)
      throw new TensorError(`prefixView of ${this.describe()}: the tensor is split in chunks`);
    this.storage.refs++;
    return new Tensor(this.device, [...shape], this.dtype, this.storage);
  }

  /** Copies the tensor to the host. f16 is widened to f32. Waits for pending GPU work. */
  toArray(): Promise<HostArray<D>> {
    this.assertLive();
    return this.device.read(this) as Promise<HostArray<D>>;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1)
      throw new TensorError(`item() needs one element, ${this.describe()} has ${this.size}`);
    return (await this.toArray())[0];
  }

  /** Removes the tensor from the enclosing scope so it outlives it. */
  keep(): this {
    this.device.untrack(this);
    return this;
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.device.untrack(this);
    this.device.releaseStorage(this.storage);
  }

  assertLive(): void {
    if (this.released) throw new TensorError(`tensor #${this.id} ${formatShape(this.shape)} was disposed`);
  }

  describe(): string {
    return `tensor #${this.id} ${this.dtype}${formatShape(this.shape)}`;
  }

  toString(): string {
    return `Tensor(${this.dtype}${formatShape(this.shape)})`;
  }
}

export function resolveReshape(from: Shape, to: Shape): number[] {
  const total = sizeOf(from);
  const inferred = to.filter((d) => d === -1).length;
  if (inferred > 1) throw new TensorError(`reshape to ${formatShape(to)}: at most one dimension can be -1`);
  const known = to.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : total / known) : d));
  checkShape(out, 'reshape target');
  if (sizeOf(out) !== total) {
    throw new TensorError(`cannot reshape ${formatShape(from)} (${total} elements) to ${formatShape(to)}`);
  }
  return out;
}
