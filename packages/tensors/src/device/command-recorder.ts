import type { BufferRange, Chunk } from '../tensor/storage.js';
import type { BufferPool } from './buffer-pool.js';
import { BufferUsage, READBACK_USAGE } from './buffer-pool.js';
import { expectDawnWait } from './dawn-polling.js';
import { keepAlive } from './keep-alive.js';
import type { KernelProfiler } from './kernel-profiler.js';
import type { CompiledKernel } from './pipeline-cache.js';
import { type UniformField, type UniformValue, uniformLayout, writeUniforms } from './uniforms.js';

export { keepAlive } from './keep-alive.js';

const UNIFORM_SLOTS = 512;

/** Where a dispatch's parameters sit in the uniform buffer of the pending submit. */
export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/**
 * Encoding: one command encoder collects dispatches and copies until the host needs a result
 * (or a submit grows too long); kernel parameters take a slot of one host-side uniform block
 * written with a single queue.writeBuffer right before the submit.
 */
export class CommandRecorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  /**
   * Dispatches, submits and a hash of the dispatches' grids since the last read-back: the kind of
   * the next read-back's wait (the same work gives the same kind; a longer prompt, a larger grid).
   */
  private dispatchesSinceRead = 0;
  private submitsSinceRead = 0;
  private gridsSinceRead = 0;
  private readonly slotSize: number;
  private readonly uniformHost: ArrayBuffer;
  private readonly uniformView: DataView;
  private readonly uniformBuffer: GPUBuffer;
  private uniformSlotsUsed = 0;
  /** While a profile runs: each dispatch in its own timestamped compute pass. */
  profiler: KernelProfiler | null = null;

  constructor(
    private readonly gpu: GPUDevice,
    private readonly pool: BufferPool,
    private readonly maxDispatchesPerSubmit: number,
    /** Called after each submit (device statistics). */
    private readonly onSubmit: () => void,
  ) {
    this.slotSize = Math.max(256, gpu.limits.minUniformBufferOffsetAlignment);
    this.uniformHost = new ArrayBuffer(this.slotSize * UNIFORM_SLOTS);
    this.uniformView = new DataView(this.uniformHost);
    this.uniformBuffer = gpu.createBuffer({
      size: this.uniformHost.byteLength,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
      label: 'webtune-uniforms',
    });
  }

  /** True when commands are recorded and not yet submitted. */
  get pending(): boolean {
    return this.pendingDispatches > 0 || this.encoder !== null;
  }

  /** True when the next dispatch must go into a new submit (uniform slots or dispatch budget used up). */
  get full(): boolean {
    return (
      this.uniformSlotsUsed >= UNIFORM_SLOTS ||
      this.pendingDispatches >= this.maxDispatchesPerSubmit ||
      (this.profiler?.full ?? false)
    );
  }

  /** Writes a dispatch's parameters into the next uniform slot. */
  writeUniforms(fields: readonly UniformField[], values: Record<string, UniformValue>): UniformSlot {
    const size = uniformLayout(fields).size;
    const offset = this.uniformSlotsUsed * this.slotSize;
    writeUniforms(this.uniformView, offset, fields, values);
    this.uniformSlotsUsed++;
    return { buffer: this.uniformBuffer, offset, size };
  }

  /** Records one dispatch; `dynamicOffset` is the uniform slot where the layout binds it dynamically. */
  dispatch(
    compiled: CompiledKernel,
    bindGroup: GPUBindGroup,
    dynamicOffset: number | null,
    x: number,
    y: number,
    z: number,
    key = '',
  ): void {
    if (this.profiler) {
      this.endPass();
      this.pass = this.commandEncoder().beginComputePass({
        timestampWrites: this.profiler.timestampWrites(key),
      });
    }
    const pass = this.computePass();
    pass.setPipeline(compiled.pipeline);
    if (dynamicOffset !== null) pass.setBindGroup(0, bindGroup, [dynamicOffset]);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.pendingDispatches++;
    this.dispatchesSinceRead++;
    this.gridsSinceRead = (Math.imul(this.gridsSinceRead, 31) + x * 1_000_003 + y * 1_009 + z) | 0;
    if (this.profiler) this.endPass();
  }

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

  /** Submits everything recorded so far; false when there was nothing to submit. */
  flush(): boolean {
    if (!this.encoder) return false;
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
    const afterSubmit = this.profiler?.resolve(this.encoder) ?? null;
    this.gpu.queue.submit([this.encoder.finish()]);
    afterSubmit?.();
    this.encoder = null;
    this.pendingDispatches = 0;
    this.submitsSinceRead++;
    this.uniformSlotsUsed = 0;
    this.pool.afterSubmit();
    this.onSubmit();
    return true;
  }

  /**
   * Copies `bytesPerElement`-sized elements of the given chunks (the first `count` of each) into
   * one mapped staging buffer, submits, and returns the bytes. A sync point.
   */
  async readChunks(
    chunks: readonly Chunk[],
    count: (chunk: Chunk) => number,
    bytesPerElement: number,
    totalElements: number,
  ): Promise<ArrayBuffer> {
    const bytes = Math.max(4, Math.ceil((totalElements * bytesPerElement) / 4) * 4);
    const staging = this.pool.acquire(bytes, READBACK_USAGE, 'readback');
    this.endPass();
    const encoder = this.commandEncoder();
    for (const chunk of chunks) {
      const length = Math.ceil((count(chunk) * bytesPerElement) / 4) * 4;
      if (length > 0)
        encoder.copyBufferToBuffer(chunk.buffer, 0, staging, chunk.elementOffset * bytesPerElement, length);
    }
    this.flush();
    // The wait is named by the work it waits for, so Dawn's polls crowd where the same read-back
    // ended before (dawn-polling.ts).
    const waited = expectDawnWait(
      `read:${this.dispatchesSinceRead}:${this.submitsSinceRead}:${this.gridsSinceRead}:${bytes}`,
    );
    this.dispatchesSinceRead = 0;
    this.submitsSinceRead = 0;
    this.gridsSinceRead = 0;
    try {
      await keepAlive(staging.mapAsync(1, 0, bytes));
    } finally {
      waited();
    }
    const raw = new Uint8Array(bytes);
    raw.set(new Uint8Array(staging.getMappedRange(0, bytes)));
    staging.unmap();
    this.pool.release(staging);
    return raw.buffer;
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
}
