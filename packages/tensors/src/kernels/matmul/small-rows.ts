import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import {
  SMALL_ROWS_FIELDS,
  type SmallRowsKernelShape,
  smallRowsKey,
  smallRowsSource,
} from './small-rows-wgsl.js';

/** What decides the small-M kernel variant of a product. */
export interface SmallRowsProblem {
  device: Device;
  /** Rows of the largest launch. */
  rows: number;
  K: number;
  N: number;
  transposeB: boolean;
  bias: boolean;
  /** Adds a residual laid out like the output in the epilogue. */
  residual?: boolean;
  dtype: 'f32' | 'f16';
  /** First output column of every launch (b read as vec4 along N needs them aligned). */
  columnOffsets: readonly number[];
}

/**
 * The small-M kernel for a product, or null where it does not apply: more rows than the
 * device's threshold (the tiled kernel then wastes little of its row tile), or K = 0.
 */
export function smallRowsShape(problem: SmallRowsProblem): SmallRowsKernelShape | null {
  const { device, rows, K, N } = problem;
  const tuning = device.tuning;
  if (rows < 1 || rows > tuning.matmulSmallRowsMax || K === 0) return null;
  const lanes = tuning.matmulSmallRowsLanes;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const subgroups = device.gpu.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= lanes;
  return {
    layout: problem.transposeB ? 'nt' : 'nn',
    // Powers of two only: few variants to compile (lavapipe takes about a second each).
    rows: 2 ** Math.ceil(Math.log2(rows)),
    cols: tuning.matmulSmallRowsCols,
    lanes,
    subgroups,
    vectorK: K % 4 === 0,
    vectorN: !problem.transposeB && N % 4 === 0 && problem.columnOffsets.every((offset) => offset % 4 === 0),
    bias: problem.bias,
    residual: problem.residual ?? false,
    dtype: problem.dtype,
  };
}

/** One launch: rows [m0, m0 + m) and columns [n0, n0 + n) of the product, offsets in elements. */
export interface SmallRowsLaunch {
  m: number;
  n: number;
  K: number;
  /** a row 0 at `offset`, rows K apart. */
  a: { range: BufferRange; offset: number };
  /** transposeB: b row (output column) 0 at `offset`, rows K apart; else b [K, N] column 0 at `offset`, rows `row` apart. */
  b: { range: BufferRange; offset: number; row: number };
  c: { range: BufferRange; offset: number; row: number };
  bias: Tensor | null;
  biasOffset: number;
  /** Added to the product, rows `c.row` apart from `offset` (elements), like the output. */
  residual?: { range: BufferRange; offset: number } | null;
}

/** Records one small-M launch; see smallRowsSource for what each workgroup computes. */
export function launchSmallRows(device: Device, shape: SmallRowsKernelShape, job: SmallRowsLaunch): void {
  const aUnit = shape.vectorK ? 4 : 1;
  const bUnit = (shape.layout === 'nt' ? shape.vectorK : shape.vectorN) ? 4 : 1;
  const blocks = Math.ceil(job.n / shape.cols);
  device.dispatch({
    key: `${KERNELS.matmul}:${smallRowsKey(shape)}`,
    source: () => smallRowsSource(shape),
    bindings: [
      vectorRange(job.a.range, aUnit),
      vectorRange(job.b.range, bUnit),
      ...(job.bias ? [job.bias] : []),
      ...(job.residual ? [job.residual.range] : []),
      job.c.range,
    ],
    uniforms: {
      fields: SMALL_ROWS_FIELDS,
      values: {
        m: job.m,
        n: job.n,
        steps: job.K / aUnit,
        blocks,
        a_offset: job.a.offset / aUnit,
        a_row: job.K / aUnit,
        b_offset: job.b.offset / bUnit,
        b_row: (shape.layout === 'nt' ? job.K : job.b.row) / bUnit,
        c_offset: job.c.offset,
        c_row: job.c.row,
        bias_offset: job.biasOffset,
        r_offset: job.residual?.offset ?? 0,
      },
    },
    workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
  });
}

/** A binding read as an array of vec4 must hold at least one. */
function vectorRange(range: BufferRange, unit: number): BufferRange {
  if (unit === 1) return range;
  return { ...range, size: Math.min(range.buffer.size - range.offset, Math.max(range.size, 16)) };
}
