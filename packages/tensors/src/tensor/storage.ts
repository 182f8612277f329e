/**
 * The GPU memory behind a tensor. Most tensors live in one buffer. A tensor larger than one
 * storage binding (maxStorageBufferBindingSize, 128 MiB in many browsers) is split into chunks of
 * whole rows (the last dimension), each in its own buffer, so kernels that work row by row
 * (embedding gather, matmul against a weight, elementwise, optimizer updates) loop over chunks.
 */
/** A buffer range bound to one kernel binding. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export interface Chunk {
  buffer: GPUBuffer;
  /** First element of the tensor held by this chunk. */
  elementOffset: number;
  elements: number;
}

export class Storage {
  /** Views (reshape) share a storage; it returns to the pool when the last one is disposed. */
  refs = 1;
  constructor(
    readonly chunks: readonly Chunk[],
    readonly elements: number,
    readonly bytesPerElement: number,
  ) {}

  get byteLength(): number {
    return this.elements * this.bytesPerElement;
  }

  private allocated = -1;

  /**
   * Bytes of GPU memory held, counting the pool's size-class rounding. Read once: the chunks never
   * change, and `GPUBuffer.size` is a call into Dawn on every read (twice per tensor's life).
   */
  get allocatedBytes(): number {
    if (this.allocated < 0) {
      let total = 0;
      for (const c of this.chunks) total += c.buffer.size;
      this.allocated = total;
    }
    return this.allocated;
  }
}

/** How many rows of `rowBytes` fit one binding; throws when one row does not. */
export function rowsPerChunk(rowBytes: number, maxChunkBytes: number): number {
  return Math.max(1, Math.floor(maxChunkBytes / Math.max(rowBytes, 1)));
}
