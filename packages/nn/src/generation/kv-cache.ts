import { type Device, type DType, type Tensor, zeros } from '@webtune/tensors';
import type { ModelConfig } from '../config/model-config.js';
import { ModelError } from '../errors.js';

/**
 * Keys and values of past positions, kept on the device: per layer two tensors
 * [batch, capacity, kvHeads, headDim]. A forward step writes its new keys and values behind the
 * `length` filled positions with buffer copies (no kernel) and attends over the filled prefix.
 * With one batch row the prefix is a view of the cache; with several rows attention gets the
 * whole capacity and the causal mask (query offset = `length`) hides the unfilled tail, which
 * is zero-filled so it can never inject NaN. A one-row cache is not filled (no kernel reads a
 * position before it is written: the forward attends over the filled prefix, the fused kernels
 * stop at the step's own slot).
 */
export class KVCache {
  readonly keys: Tensor[] = [];
  readonly values: Tensor[] = [];
  /** Positions filled in every row (the next step's query offset). */
  length = 0;
  private pending = 0;

  constructor(
    readonly device: Device,
    readonly batch: number,
    readonly capacity: number,
    readonly layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly dtype: DType = 'f32',
  ) {
    if (!(capacity > 0 && batch > 0)) {
      throw new ModelError(`KVCache: batch (${batch}) and capacity (${capacity}) must be positive`);
    }
    const shape = [batch, capacity, kvHeads, headDim];
    const make = () => (batch > 1 ? zeros(device, shape, dtype) : device.empty(shape, dtype)).keep();
    for (let i = 0; i < layers; i++) {
      this.keys.push(make());
      this.values.push(make());
    }
  }

  /** A cache sized for a model's config. */
  static forModel(
    device: Device,
    config: ModelConfig,
    batch: number,
    capacity: number,
    dtype: DType = 'f32',
  ) {
    return new KVCache(
      device,
      batch,
      capacity,
      config.numHiddenLayers,
      config.numKeyValueHeads,
      config.headDim,
      dtype,
    );
  }

  /** Positions still free. */
  get remaining(): number {
    return this.capacity - this.length;
  }

  /**
   * Writes a step's keys and values [batch, steps, kvHeads, headDim] of one layer after the
   * filled positions and returns the tensors to attend over: [batch, length + steps, ...] views
   * for one row, the whole cache for several. Call `advance(steps)` after the last layer.
   */
  update(layer: number, key: Tensor, value: Tensor): { keys: Tensor; values: Tensor } {
    const [batch, steps, kvHeads, headDim] = key.shape;
    if (
      batch !== this.batch ||
      kvHeads !== this.kvHeads ||
      headDim !== this.headDim ||
      key.dtype !== this.dtype ||
      value.dtype !== this.dtype
    ) {
      throw new ModelError(
        `KVCache.update: key ${key.describe()} does not fit a cache of [${this.batch}, ${this.capacity}, ${this.kvHeads}, ${this.headDim}] ${this.dtype}`,
      );
    }
    if (this.length + steps > this.capacity) {
      throw new ModelError(
        `KVCache.update: ${steps} new positions after ${this.length} exceed the capacity of ${this.capacity}`,
      );
    }
    this.pending = steps;
    const rowBytes = kvHeads * headDim * (this.dtype === 'f16' ? 2 : 4);
    for (const [source, target] of [
      [key, this.keys[layer]],
      [value, this.values[layer]],
    ] as const) {
      const from = source.binding('KVCache.update');
      const to = target.binding('KVCache.update');
      for (let b = 0; b < batch; b++) {
        this.device.copyBuffer(
          { buffer: from.buffer, offset: from.offset + b * steps * rowBytes, size: steps * rowBytes },
          {
            buffer: to.buffer,
            offset: to.offset + (b * this.capacity + this.length) * rowBytes,
            size: steps * rowBytes,
          },
        );
      }
    }
    if (batch > 1) return { keys: this.keys[layer], values: this.values[layer] };
    return {
      keys: prefixView(this.keys[layer], this.length + steps),
      values: prefixView(this.values[layer], this.length + steps),
    };
  }

  /** Marks the positions written by the last step as filled. */
  advance(steps = this.pending): void {
    this.length += steps;
    this.pending = 0;
  }

  /** Forgets every position (the memory is kept for the next sequence). */
  reset(): void {
    this.length = 0;
    this.pending = 0;
  }

  dispose(): void {
    // The reverse of creation order (the buffer pool then gives the next cache the same buffers).
    for (let i = this.keys.length - 1; i >= 0; i--) {
      this.values[i].dispose();
      this.keys[i].dispose();
    }
    this.keys.length = 0;
    this.values.length = 0;
  }
}

/** The first `rows` positions of a [1, capacity, ...] cache tensor, sharing its storage. */
function prefixView(cache: Tensor, rows: number): Tensor {
  return cache.prefixView([1, rows, cache.shape[2], cache.shape[3]]);
}
