import { formatShape } from '../tensor/shape.js';
import { type Chunk, rowsPerChunk, Storage } from '../tensor/storage.js';
import { Tensor } from '../tensor/tensor.js';
import { type BufferPool, STORAGE_USAGE } from './buffer-pool.js';
import type { MemoryStats } from './device-types.js';
import { TensorError } from './errors.js';

/**
 * Lifetime: the storage behind tensors (split in chunks of whole rows where one binding cannot
 * hold it), reference counts of views, scopes that dispose intermediates, and memory accounting.
 */
export class TensorLifetime {
  private readonly scopes: Set<Tensor>[] = [];
  private liveBytes = 0;
  private peakBytes = 0;
  private liveTensors = 0;

  constructor(
    private readonly pool: BufferPool,
    private readonly maxBindingBytes: number,
  ) {}

  /** GPU buffers for `elements` elements; chunks hold whole rows of `rowElements`. */
  allocate(
    elements: number,
    bytesPerElement: number,
    rowElements: number,
    shape: readonly number[],
    dtype: string,
  ): Storage {
    // The label (dtype and shape) is built only where the pool creates a buffer, not on reuse.
    const label = () => `${dtype}${formatShape(shape)}`;
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
          `tensor ${label()}: one row of ${rowBytes} bytes exceeds this device's binding limit of ${this.maxBindingBytes} bytes`,
        );
      }
      let rows = rowsPerChunk(rowBytes, this.maxBindingBytes);
      if (rowBytes % 4 !== 0 && rows % 2 === 1 && rows > 1) rows--;
      const perChunk = rows * rowElements;
      for (let offset = 0; offset < elements; offset += perChunk) {
        const count = Math.min(perChunk, elements - offset);
        chunks.push({
          buffer: this.pool.acquire(count * bytesPerElement, STORAGE_USAGE, `${label()}#${chunks.length}`),
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

  /** Drops one reference; the last one returns the buffers to the pool. */
  release(storage: Storage): void {
    storage.refs--;
    if (storage.refs > 0) return;
    this.liveBytes -= storage.allocatedBytes;
    for (const chunk of storage.chunks) this.pool.release(chunk.buffer);
  }

  track(tensor: Tensor): void {
    this.liveTensors++;
    this.scopes[this.scopes.length - 1]?.add(tensor);
  }

  untrack(tensor: Tensor): void {
    for (const scope of this.scopes) scope.delete(tensor);
    if (tensor.disposed) this.liveTensors--;
  }

  scope<T>(fn: () => T): T {
    const created = new Set<Tensor>();
    this.scopes.push(created);
    const finish = (result: unknown, failed: boolean) => {
      const index = this.scopes.lastIndexOf(created);
      if (index >= 0) this.scopes.splice(index, 1);
      const kept = failed ? new Set<Tensor>() : collectTensors(result);
      // Newest first: the pool hands out the last buffer released first, so a scope that runs
      // again (the next prefill, the next step) gets back the same buffer for each tensor, and the
      // bind groups cached for those buffers hit instead of being made anew each call.
      for (const tensor of [...created].reverse()) {
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

  memory(): MemoryStats {
    return {
      liveBytes: this.liveBytes,
      peakBytes: this.peakBytes,
      pooledBytes: this.pool.pooledBytes + this.pool.pendingBytes,
      allocatedBytes: this.pool.allocatedBytes,
      liveTensors: this.liveTensors,
    };
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }
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
