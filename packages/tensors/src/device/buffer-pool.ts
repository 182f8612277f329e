interface PooledBuffer {
  rank: number;
  size: number;
  usage: number;
}

/** The free-list key of a usage and size class: a number, so a lookup builds no string. */
function freeKey(usage: number, size: number): number {
  // Usage flags stay below 2^10 (QUERY_RESOLVE is 0x200); sizes below 2^42 keep the key exact.
  return size * 1024 + usage;
}

/** GPUBufferUsage values, spelled out so the package needs no WebGPU globals installed. */
export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  QUERY_RESOLVE: 0x200,
} as const;

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
export const READBACK_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST;

/**
 * Rounds a request up to a size class so freed buffers are reused by later requests of a
 * similar size: 256-byte steps below 64 KiB, then four classes per power of two (at most 25%
 * slack). The first use of a fresh buffer costs up to 10x a reused one on lavapipe.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, bytes);
  if (b <= 65536) return Math.ceil(b / 256) * 256;
  const pow = 2 ** Math.floor(Math.log2(b));
  const step = pow / 4;
  return Math.ceil(b / step) * step;
}

/**
 * Reuses GPU buffers by size class and usage. Buffers released while commands that use them are
 * still being recorded wait in `pending` until that command buffer is submitted; only then may a
 * later queue.writeBuffer touch them (writeBuffer runs before the not-yet-submitted commands).
 * A buffer released while nothing is being recorded (`recording()` false: every command that can
 * use it is submitted) is reusable at once, so a call that frees its buffers after reading its
 * result (a prompt's prefill, a generate call) hands them to the next call instead of leaving
 * that one to allocate fresh ones (lazily zero-filled, first touched: several times slower).
 */
export class BufferPool {
  /** Free buffers by `freeKey(usage, size)`, each list sorted by creation order, newest first. */
  private readonly free = new Map<number, GPUBuffer[]>();
  /**
   * Creation order, size and usage of every buffer the pool has seen: read here instead of
   * `GPUBuffer.size`/`.usage`, which call into Dawn on every read.
   */
  private readonly known = new WeakMap<GPUBuffer, PooledBuffer>();
  private created = 0;
  private pending: GPUBuffer[] = [];
  pooledBytes = 0;
  pendingBytes = 0;
  allocatedBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    /** Whether commands are recorded and not yet submitted (the buffer may be used by them). */
    private readonly recording: () => boolean = () => true,
    /** Called once per buffer created (device statistics). */
    private readonly onCreate: () => void = () => {},
  ) {}

  /** `label` may be a function: it is called only when a buffer is created (not on reuse). */
  acquire(bytes: number, usage: number, label?: string | (() => string)): GPUBuffer {
    let size = sizeClass(bytes);
    if (size > this.maxBufferSize) size = Math.ceil(bytes / 4) * 4;
    const list = this.free.get(freeKey(usage, size));
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= size;
      return reused;
    }
    this.allocatedBytes += size;
    this.onCreate();
    const buffer = this.device.createBuffer({
      size,
      usage,
      label: typeof label === 'function' ? label() : label,
    });
    this.known.set(buffer, { rank: this.created++, size, usage });
    return buffer;
  }

  /** Returns a buffer; it becomes reusable after the next submit, or now when nothing is recorded. */
  release(buffer: GPUBuffer): void {
    if (!this.recording()) {
      this.makeFree(buffer);
      return;
    }
    this.pending.push(buffer);
    this.pendingBytes += this.infoOf(buffer).size;
  }

  /** Called right after a submit: released buffers may now be handed out again. */
  afterSubmit(): void {
    for (const buffer of this.pending) this.makeFree(buffer);
    this.pending = [];
    this.pendingBytes = 0;
  }

  private makeFree(buffer: GPUBuffer): void {
    const info = this.infoOf(buffer);
    const key = freeKey(info.usage, info.size);
    let list = this.free.get(key);
    if (!list) {
      list = [];
      this.free.set(key, list);
    }
    // The oldest free buffer goes out first (the list's end). So the buffer a request gets depends
    // only on which buffers are free, not on the order they were freed in: work that repeats (a
    // prefill, a training step) makes the same requests against the same free buffers and gets
    // the same buffers back each time, and the bind groups cached for them hit.
    const rank = info.rank;
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.infoOf(list[middle]).rank > rank) low = middle + 1;
      else high = middle;
    }
    list.splice(low, 0, buffer);
    this.pooledBytes += info.size;
  }

  /** What the pool knows of a buffer; one it did not create ranks below all of its own. */
  private infoOf(buffer: GPUBuffer): PooledBuffer {
    let info = this.known.get(buffer);
    if (!info) {
      info = { rank: -1, size: buffer.size, usage: buffer.usage };
      this.known.set(buffer, info);
    }
    return info;
  }

  /** Destroys every pooled buffer (memory goes back to the driver). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.allocatedBytes -= buffer.size;
        buffer.destroy();
      }
    }
    this.free.clear();
    this.pooledBytes = 0;
  }
}
