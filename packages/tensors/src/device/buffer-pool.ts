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
  /** Free buffers by usage and size, each list sorted by creation order, newest first. */
  private readonly free = new Map<string, GPUBuffer[]>();
  /** Creation order of every buffer the pool made. */
  private readonly order = new WeakMap<GPUBuffer, number>();
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

  acquire(bytes: number, usage: number, label?: string): GPUBuffer {
    let size = sizeClass(bytes);
    if (size > this.maxBufferSize) size = Math.ceil(bytes / 4) * 4;
    const list = this.free.get(`${usage}:${size}`);
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= reused.size;
      return reused;
    }
    this.allocatedBytes += size;
    this.onCreate();
    const buffer = this.device.createBuffer({ size, usage, label });
    this.order.set(buffer, this.created++);
    return buffer;
  }

  /** Returns a buffer; it becomes reusable after the next submit, or now when nothing is recorded. */
  release(buffer: GPUBuffer): void {
    if (!this.recording()) {
      this.makeFree(buffer);
      return;
    }
    this.pending.push(buffer);
    this.pendingBytes += buffer.size;
  }

  /** Called right after a submit: released buffers may now be handed out again. */
  afterSubmit(): void {
    for (const buffer of this.pending) this.makeFree(buffer);
    this.pending = [];
    this.pendingBytes = 0;
  }

  private makeFree(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) {
      list = [];
      this.free.set(key, list);
    }
    // The oldest free buffer goes out first (the list's end). So the buffer a request gets depends
    // only on which buffers are free, not on the order they were freed in: work that repeats (a
    // prefill, a training step) makes the same requests against the same free buffers and gets
    // the same buffers back each time, and the bind groups cached for them hit.
    const rankOf = (b: GPUBuffer) => this.order.get(b) ?? -1;
    const rank = rankOf(buffer);
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (rankOf(list[middle]) > rank) low = middle + 1;
      else high = middle;
    }
    list.splice(low, 0, buffer);
    this.pooledBytes += buffer.size;
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
