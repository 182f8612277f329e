import type { Tuning } from '../../device/adapter-class.js';
import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { workgroupsFor } from '../shared/wgsl.js';
import { PACK_FIELDS, packSource } from './matmul-wgsl.js';

/*
 * How the matmul kernel reads an operand: in place where its layout allows vec4 loads, otherwise
 * from a packed copy (transposed, padded, widened from f16) in panels of a tile's rows.
 */

/**
 * A matrix operand as the kernel reads it: `rows` rows (output rows for A, output columns for B)
 * of K values, element (row, k) at offset + row * rowStride + k * kStride of `range`.
 */
export interface MatrixSource {
  range: BufferRange;
  offset: number;
  rowStride: number;
  kStride: number;
  /** Elements between consecutive matrices of a batch. */
  batchStride: number;
}

/** Addressing of an operand in vec4 units, see the operand fields in matmul-wgsl.ts. */
export interface OperandPlan {
  range: BufferRange;
  offset: number;
  panel: number;
  line: number;
  step: number;
  /** vec4s between consecutive matrices of the operand's batch. */
  batchStride: number;
  /** A packed copy to dispose once the product is recorded. */
  temporary: Tensor | null;
  /** Read in place along its rows (the kernel's aOuter/bOuter): `line` is then the vec4s per k. */
  outer: boolean;
}

/**
 * Plans one operand: read it in place when it allows (see needsPacking), otherwise pack it
 * (transpose, pad, widen f16) into panels of `tile` rows.
 */
export function planOperand(
  device: Device,
  source: MatrixSource,
  rows: number,
  K: number,
  batches: number,
  tile: number,
  dtype: DType,
  outer = false,
): OperandPlan {
  const k4 = Math.ceil(K / 4);
  if (outer) {
    return {
      range: vectorRange(source.range),
      offset: source.offset / 4,
      panel: 0,
      line: source.kStride / 4,
      step: 0,
      batchStride: source.batchStride / 4,
      temporary: null,
      outer: true,
    };
  }
  if (!needsPacking(source, K, dtype)) {
    // Rows rowStride apart: the whole K of a matrix, or a K segment of a longer row.
    const line = source.rowStride / 4;
    return {
      range: vectorRange(source.range),
      offset: source.offset / 4,
      panel: tile * line,
      line,
      step: 1,
      batchStride: source.batchStride / 4,
      temporary: null,
      outer: false,
    };
  }
  const panels = Math.ceil(rows / tile);
  const count = batches * panels * k4 * tile;
  const packed = device.empty([count * 4], 'f32');
  const workgroup = device.tuning.elementwiseWorkgroup;
  if (count > 0) {
    device.dispatch({
      key: `${KERNELS.matmul}:pack:${dtype}:${workgroup}`,
      source: () => packSource(dtype, workgroup),
      bindings: [source.range, packed],
      uniforms: {
        fields: PACK_FIELDS,
        values: {
          count,
          rows,
          k: K,
          k4,
          tile,
          panels,
          row_stride: source.rowStride,
          k_stride: source.kStride,
          offset: source.offset,
          batch_stride: source.batchStride,
        },
      },
      workgroups: grid(workgroupsFor(count, workgroup), device.maxWorkgroupsPerDimension),
    });
  }
  return {
    range: vectorRange(packed.binding('matmul')),
    offset: 0,
    panel: k4 * tile,
    line: 1,
    step: tile,
    batchStride: panels * k4 * tile,
    temporary: packed,
    outer: false,
  };
}

/** A binding read as array<vec4<f32>> must hold at least one vec4, even for an empty operand. */
export function vectorRange(range: BufferRange): BufferRange {
  return { ...range, size: Math.min(range.buffer.size - range.offset, Math.max(range.size, 16)) };
}

/**
 * Direct reads need f32 rows contiguous in K with K a multiple of 4 (vec4 loads), rows a multiple
 * of 4 values apart (the whole K, or a K segment of longer rows) from an offset that is one too.
 * Rows 4 KiB apart or a multiple of it (a row stride a multiple of 1024) are packed as well: the
 * rows one tile reads side by side would map to the same L1 cache sets.
 */
export function needsPacking(source: MatrixSource, K: number, dtype: DType): boolean {
  const direct =
    dtype === 'f32' &&
    source.kStride === 1 &&
    source.rowStride >= K &&
    source.rowStride % 4 === 0 &&
    source.offset % 4 === 0 &&
    K % 4 === 0;
  return !direct || (K > 0 && source.rowStride % 1024 === 0);
}

/**
 * Largest operand (rows x K f32) read in place along its rows. A workgroup's strip of a larger
 * one spans more pages than the TLB holds (a tied head's [32000, 288] embedding in dh = dlogits E
 * ran at 0.6x the packed path on lavapipe); its packed panels are contiguous.
 */
export const OUTER_OPERAND_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Whether an operand that needs packing for K-wise loads can instead be read in place along its
 * rows (a^T stored [K, M], b stored [K, N]: the backward of a linear layer): f32, rows contiguous
 * (row stride 1) with every k's row of the stored matrix, the offset, the batch stride and the
 * operand's row count multiples of 4 (vec4 loads of four rows), K a multiple of 4, `tile` (the
 * rows one invocation holds) a multiple of 4, and at most OUTER_OPERAND_MAX_BYTES.
 */
export function readsOuter(
  source: MatrixSource,
  rows: number,
  K: number,
  dtype: DType,
  tile: number,
): boolean {
  return (
    dtype === 'f32' &&
    4 * rows * K <= OUTER_OPERAND_MAX_BYTES &&
    source.rowStride === 1 &&
    source.kStride % 4 === 0 &&
    source.offset % 4 === 0 &&
    source.batchStride % 4 === 0 &&
    rows % 4 === 0 &&
    rows > 0 &&
    K % 4 === 0 &&
    tile % 4 === 0
  );
}

/**
 * The longest K segment of a product whose operand stored across K (a^T [K, M], b [K, N]) is
 * read in place in segments (tuning.matmulOuterSegments): at most OUTER_OPERAND_MAX_BYTES of
 * that operand per launch, a multiple of 4. K itself where no such operand is over the limit.
 */
export function outerSegmentK(
  tuning: Pick<Tuning, 'matmulOuterOperands' | 'matmulOuterSegments' | 'matmulSmallRowsMax'>,
  problem: { K: number; M: number; N: number; dtype: DType; transposeA: boolean; transposeB: boolean },
): number {
  const { K, M, N, dtype, transposeA, transposeB } = problem;
  if (!tuning.matmulOuterOperands || !tuning.matmulOuterSegments || dtype !== 'f32' || K % 4 !== 0) return K;
  // A few rows read b in place already (the small-M kernel, which takes one K segment).
  if (!transposeA && M <= tuning.matmulSmallRowsMax) return K;
  let limit = K;
  for (const [across, rows] of [
    [transposeA, M],
    [!transposeB, N],
  ] as const) {
    if (!across || rows % 4 !== 0 || 4 * rows * K <= OUTER_OPERAND_MAX_BYTES) continue;
    limit = Math.min(limit, Math.max(4, 4 * Math.floor(OUTER_OPERAND_MAX_BYTES / (16 * rows))));
  }
  return limit;
}

/** Most rows of a packed operand that fit one binding, in whole panels. */
export function packedRowLimit(device: Device, K: number, tile: number, what: string): number {
  const panelBytes = 16 * Math.max(1, Math.ceil(K / 4)) * tile;
  const panels = Math.floor(device.maxBindingBytes / panelBytes);
  if (panels < 1) {
    throw new TensorError(
      `matmul: one packed ${what} panel (${tile} x ${K}) exceeds this device's binding limit of ${device.maxBindingBytes} bytes`,
    );
  }
  return panels * tile;
}
