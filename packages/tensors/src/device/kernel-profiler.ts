import { BufferUsage, READBACK_USAGE } from './buffer-pool.js';
import { keepAlive } from './keep-alive.js';

/*
 * Per-kernel GPU time from `timestamp-query`: while a profile runs, every dispatch gets its own
 * compute pass whose beginning and end write a timestamp. Each submit resolves its timestamps
 * into a buffer of its own, read back when the profile stops, so profiling adds no sync point.
 */

/** GPU time of the dispatches of one kernel key (or kernel name) during a profile. */
export interface KernelTime {
  /** The kernel's name (KERNELS constant) or its full pipeline key. */
  name: string;
  dispatches: number;
  /** Sum of the dispatches' begin-to-end times, in milliseconds. */
  totalMs: number;
}

/** What a profile measured, from Device.startProfile() to Device.stopProfile(). */
export interface KernelProfile {
  dispatches: number;
  submits: number;
  readbacks: number;
  /** Wall-clock time between start and stop, in milliseconds. */
  wallMs: number;
  /** Sum of every dispatch's GPU time, in milliseconds (NaN without timestamp-query). */
  gpuMs: number;
  /** False where the adapter lacks `timestamp-query`: dispatch counts only, every time NaN. */
  timed: boolean;
  /** Per kernel name (the key up to its first ':'), largest total first. */
  kernels: KernelTime[];
  /** Per full pipeline key (kernel plus variant), largest total first. */
  keys: KernelTime[];
  /**
   * Every timed dispatch in submit order: its key and its begin and end timestamps in milliseconds
   * of the adapter's clock (lavapipe's is CLOCK_MONOTONIC, the clock of `process.hrtime`, so host
   * events can be placed between kernels). Empty without timestamp-query.
   */
  spans: KernelSpan[];
}

/** One profiled dispatch: its kernel key and GPU begin/end in milliseconds of the adapter's clock. */
export interface KernelSpan {
  key: string;
  begin: number;
  end: number;
}

/** Timestamps of one submit: the keys of its dispatches and the buffer their times land in. */
interface PendingSubmit {
  keys: string[];
  read: Promise<BigUint64Array>;
}

/** The longest run of dispatches one query set holds (two timestamps each; WebGPU allows 4096 queries). */
export const PROFILED_DISPATCHES_PER_SUBMIT = 2048;

/** Records timestamps for the dispatches of the submits made while it is active. */
export class KernelProfiler {
  private querySet: GPUQuerySet | null = null;
  private keys: string[] = [];
  private readonly submits: PendingSubmit[] = [];

  constructor(private readonly gpu: GPUDevice) {}

  /** True when the current submit's query set is full: the recorder must submit first. */
  get full(): boolean {
    return this.keys.length >= PROFILED_DISPATCHES_PER_SUBMIT;
  }

  /** The timestampWrites of the next dispatch's compute pass, labelled with its kernel key. */
  timestampWrites(key: string): GPUComputePassTimestampWrites {
    this.querySet ??= this.gpu.createQuerySet({
      type: 'timestamp',
      count: 2 * PROFILED_DISPATCHES_PER_SUBMIT,
    });
    const index = this.keys.length;
    this.keys.push(key);
    return {
      querySet: this.querySet,
      beginningOfPassWriteIndex: 2 * index,
      endOfPassWriteIndex: 2 * index + 1,
    };
  }

  /** Before the submit's encoder finishes: resolve this submit's timestamps into a readable buffer. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    if (!this.querySet || this.keys.length === 0) return null;
    const count = 2 * this.keys.length;
    const bytes = 8 * count;
    const resolved = this.gpu.createBuffer({
      size: bytes,
      usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC,
    });
    const staging = this.gpu.createBuffer({ size: bytes, usage: READBACK_USAGE });
    encoder.resolveQuerySet(this.querySet, 0, count, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    const keys = this.keys;
    const querySet = this.querySet;
    this.keys = [];
    this.querySet = null;
    // After the submit: map the staging buffer (awaited when the profile stops).
    return () => {
      const read = keepAlive(staging.mapAsync(1, 0, bytes)).then(() => {
        const values = new BigUint64Array(staging.getMappedRange(0, bytes).slice(0));
        staging.unmap();
        staging.destroy();
        resolved.destroy();
        querySet.destroy();
        return values;
      });
      this.submits.push({ keys, read });
    };
  }

  /** Waits for every submit's timestamps and sums them per kernel. */
  async collect(): Promise<{
    dispatches: number;
    gpuMs: number;
    kernels: KernelTime[];
    keys: KernelTime[];
    spans: KernelSpan[];
  }> {
    const spans: KernelSpan[] = [];
    const byName = new Map<string, KernelTime>();
    const byKey = new Map<string, KernelTime>();
    let gpuMs = 0;
    let dispatches = 0;
    for (const submit of this.submits) {
      const times = await submit.read;
      submit.keys.forEach((key, i) => {
        const begin = times[2 * i];
        const end = times[2 * i + 1];
        const ms = end > begin ? Number(end - begin) / 1e6 : 0;
        spans.push({ key, begin: Number(begin) / 1e6, end: Number(end) / 1e6 });
        gpuMs += ms;
        dispatches++;
        add(byKey, key, ms);
        add(byName, key.split(':')[0], ms);
      });
    }
    this.submits.length = 0;
    const sorted = (map: Map<string, KernelTime>) => [...map.values()].sort((a, b) => b.totalMs - a.totalMs);
    return { dispatches, gpuMs, kernels: sorted(byName), keys: sorted(byKey), spans };
  }
}

function add(map: Map<string, KernelTime>, name: string, ms: number): void {
  const entry = map.get(name) ?? { name, dispatches: 0, totalMs: 0 };
  entry.dispatches++;
  entry.totalMs += ms;
  map.set(name, entry);
}

/** A profile as a text table: one row per kernel, its dispatches, total and share of GPU time. */
export function formatKernelProfile(profile: KernelProfile, rows: KernelTime[] = profile.kernels): string {
  const width = Math.max(6, ...rows.map((row) => row.name.length));
  const lines = [
    `${'kernel'.padEnd(width)}  dispatches  total ms  mean us  share`,
    ...rows.map(
      (row) =>
        `${row.name.padEnd(width)}  ${String(row.dispatches).padStart(10)}  ${row.totalMs.toFixed(2).padStart(8)}  ${((row.totalMs * 1000) / Math.max(1, row.dispatches)).toFixed(1).padStart(7)}  ${((100 * row.totalMs) / Math.max(1e-9, profile.gpuMs)).toFixed(1).padStart(4)}%`,
    ),
    `${profile.dispatches} dispatches, ${profile.submits} submits, ${profile.readbacks} read-backs; GPU ${profile.gpuMs.toFixed(1)} ms of ${profile.wallMs.toFixed(1)} ms wall`,
  ];
  return lines.join('\n');
}
