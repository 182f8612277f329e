import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { add } from '../../ops/elementwise.js';
import { broadcastShapes, collapseDims, contiguousStrides, formatShape, sizeOf } from '../../tensor/shape.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { runTiledMatmul } from '../matmul-tiled/matmul-tiled.js';
import { matmulCapabilities, selectMatmulVariant } from '../matmul-tiled/select-variant.js';
import { KERNELS } from '../names.js';
import { chunkOfRow, chunkRange, rowCuts, segments } from '../shared/chunks.js';
import { MAX_RANK, padDims } from '../shared/strided.js';
import {
  MATMUL_FIELDS,
  MATMUL_SCALED_FIELDS,
  type MatmulKernelShape,
  matmulKey,
  matmulSource,
  tileCols,
  tileRows,
} from './matmul-wgsl.js';
import {
  type MatrixSource,
  needsPacking,
  type OperandPlan,
  outerSegmentK,
  packedRowLimit,
  planOperand,
  readsOuter,
} from './operand-plan.js';
import { launchSmallRows, smallRowsShape } from './small-rows.js';

export interface MatmulOptions {
  /** `a` holds [..., K, M]: multiply by its transpose (no copy is made by the caller). */
  transposeA?: boolean;
  /** `b` holds [..., N, K], e.g. a weight stored [out, in]: multiply by its transpose. */
  transposeB?: boolean;
  /** [N], added to every output row in the kernel's epilogue. */
  bias?: Tensor | null;
  /**
   * A tensor of the output's shape and dtype added to the product (a residual connection, or
   * the base projection a LoRA product adds to): fused into the kernel's epilogue, a separate add
   * only where the output or the residual is split in chunks. The autograd matmul passes the
   * output's gradient to it unchanged.
   */
  residual?: Tensor | null;
  /**
   * The product a x b is multiplied by alpha (default 1) in the epilogue, before the bias and
   * the residual are added: LoRA's scaling, and its gradients.
   */
  alpha?: number;
}

/**
 * Matrix product a x b with NumPy batch broadcasting: a [..., M, K] (or [..., K, M] with
 * transposeA) times b [..., K, N] (or [..., N, K] with transposeB) gives [..., M, N], plus an
 * optional bias [N]. f16 tensors are computed in f32 and rounded on store.
 *
 * Tensors larger than one storage binding (split in chunks of whole rows) are supported when the
 * product is one 2-D product after folding a's batch into M (b 2-D, and a 2-D with transposeA):
 * a chunked weight [N, K] with transposeB (a tied LM head) runs chunk by chunk into column
 * blocks of the output; a chunked output, or a chunked a, in row blocks; a chunked a^T or b
 * [K, N] (the backward of a tied head) in K blocks added into the output.
 *
 * Products of a few rows (at most `device.tuning.matmulSmallRowsMax`, decoding) take a
 * bandwidth-bound kernel that splits K over the lanes of a workgroup (small-rows.ts).
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const bias = options.bias ?? null;
  const residual = options.residual ?? null;
  const alpha = options.alpha ?? 1;
  a.assertLive();
  b.assertLive();
  const device = a.device;
  const describe = () =>
    `${a.describe()}${transposeA ? '^T' : ''} x ${b.describe()}${transposeB ? '^T' : ''}`;
  if (b.device !== device)
    throw new TensorError(`matmul: operands live on different devices (${describe()})`);
  if (a.rank < 2 || b.rank < 2) {
    throw new TensorError(`matmul needs operands of rank >= 2, got ${describe()}; reshape vectors to [1, n]`);
  }
  if (a.dtype !== b.dtype) throw new TensorError(`matmul: dtypes differ (${describe()}); cast one first`);
  if (!Number.isFinite(alpha))
    throw new TensorError(`matmul: alpha must be a finite number, got ${alpha} (${describe()})`);
  if (a.dtype !== 'f32' && a.dtype !== 'f16') {
    throw new TensorError(`matmul is defined for f32 and f16 tensors, not ${a.dtype} (${describe()})`);
  }
  const dtype = a.dtype;
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const M = transposeA ? aCols : aRows;
  const K = transposeA ? aRows : aCols;
  const N = transposeB ? bRows : bCols;
  const bK = transposeB ? bCols : bRows;
  if (K !== bK) {
    throw new TensorError(`matmul: inner dimensions differ, K = ${K} for a and ${bK} for b (${describe()})`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes(aBatch, bBatch);
  } catch {
    throw new TensorError(
      `matmul: batch dimensions ${formatShape(aBatch)} and ${formatShape(bBatch)} cannot be broadcast (${describe()})`,
    );
  }
  if (bias) {
    bias.assertLive();
    if (bias.device !== device) throw new TensorError('matmul: bias lives on another device');
    if (bias.dtype !== dtype || bias.rank !== 1 || bias.shape[0] !== N) {
      throw new TensorError(`matmul: bias must be ${dtype}[${N}], got ${bias.describe()} (${describe()})`);
    }
    if (bias.chunked) throw new TensorError(`matmul: bias ${bias.describe()} must fit one storage binding`);
  }

  // A batch over a alone folds into M: one 2-D product, which is also the case that supports
  // chunked tensors (each chunk holds whole rows). With transposeA, a must be a single matrix.
  const folded = sizeOf(bBatch) === 1 && (!transposeA || sizeOf(aBatch) === 1);
  if (!folded && (a.chunked || b.chunked)) {
    throw new TensorError(
      `matmul: operands split in chunks are supported only when the product is one 2-D product (b 2-D; a 2-D with transposeA): ${describe()}`,
    );
  }
  const outShape = [...batch, M, N];
  if (residual) {
    residual.assertLive();
    if (residual.device !== device) throw new TensorError('matmul: residual lives on another device');
    if (residual.dtype !== dtype || formatShape(residual.shape) !== formatShape(outShape)) {
      throw new TensorError(
        `matmul: residual must be ${dtype}${formatShape(outShape)} like the output, got ${residual.describe()} (${describe()})`,
      );
    }
  }
  const out = device.empty(outShape, dtype);
  if (out.size === 0) return out;
  const problem: Problem = {
    device,
    a,
    b,
    out,
    bias,
    residual: residual && !residual.chunked && !out.chunked ? residual : null,
    fusedResidual: false,
    alpha,
    transposeA,
    transposeB,
    M: folded ? sizeOf(aBatch) * M : M,
    K,
    N,
    dtype,
  };
  // Kernel choice by capability (features, limits, the adapter class's tuning): select-variant.ts.
  const selection = selectMatmulVariant(matmulCapabilities(device), {
    dtype,
    rows: problem.M,
    cols: N,
    folded,
    transposeA,
    chunked: a.chunked || b.chunked || out.chunked,
  });
  try {
    const tiled =
      selection.variant === 'workgroup-tiled' ||
      selection.variant === 'subgroup-tiled' ||
      selection.variant === 'subgroup-matrix';
    // K = 0 (the output is the bias or zeros) stays on the register path, which handles it; so
    // does a scaled product (alpha), whose factor only the register kernel's epilogue applies.
    if (tiled && K > 0 && alpha === 1) {
      runTiledMatmul({ a, b, out, bias, transposeA, transposeB, M, K, N }, selection);
    } else if (folded) runFolded(problem);
    else runBatched(problem, batch, aBatch, bBatch);
  } catch (error) {
    out.dispose();
    throw error;
  }
  if (residual && !problem.fusedResidual) {
    const sum = add(out, residual);
    out.dispose();
    return sum;
  }
  return out;
}

interface Problem {
  device: Device;
  a: Tensor;
  b: Tensor;
  out: Tensor;
  bias: Tensor | null;
  /** Fused by runSmallRows where it applies (sets fusedResidual); added afterwards otherwise. */
  residual: Tensor | null;
  fusedResidual: boolean;
  /** Factor of the product (1: none). */
  alpha: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Rows of the (folded) output, inner dimension, output columns. */
  M: number;
  K: number;
  N: number;
  dtype: 'f32' | 'f16';
}

/** Picks the kernel variant for this device and problem. */
function kernelShape(
  device: Device,
  rows: number,
  problem: Problem,
  columnOffsets: readonly number[],
): MatmulKernelShape {
  const tuning = device.tuning;
  const lanes = tuning.matmulWorkgroup;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const subgroups =
    tuning.matmulSubgroups &&
    device.gpu.features.has('subgroups') &&
    (info?.subgroupMinSize ?? 0) >= lanes &&
    tuning.matmulTileRows % lanes === 0;
  const common = {
    cols: tuning.matmulTileCols,
    vectorStore:
      tuning.matmulTileCols % 4 === 0 &&
      problem.N % 4 === 0 &&
      columnOffsets.every((offset) => offset % 4 === 0),
    bias: problem.bias !== null,
    accumulate: false,
    outType: problem.dtype,
  };
  if (subgroups) {
    // A few rows (decoding a token): one row per lane wastes less work on clamped rows. Only two
    // heights, so lavapipe compiles few variants (each takes seconds).
    const tile = rows <= lanes ? lanes : tuning.matmulTileRows;
    return { ...common, rows: tile, lanesN: lanes, lanesM: 1, subgroups: true };
  }
  const lanesN = gcd(lanes, 16);
  const lanesM = lanes / lanesN;
  const tile = Math.max(1, Math.min(tuning.matmulTileRows, Math.ceil(rows / lanesM)));
  return { ...common, rows: tile, lanesN, lanesM, subgroups: false };
}

function gcd(x: number, y: number): number {
  return y === 0 ? x : gcd(y, x % y);
}

/**
 * The 2-D product [M, K] x [K, N] of tensors that may be split in chunks of whole rows: row
 * segments at the chunk boundaries of the output (and of a), column segments at those of a
 * transposed b (a weight [N, K]), and K segments at those of a transposed a or a plain b (the
 * backward of a tied LM head: dlogits^T x h into a chunked [V, D], dlogits x E with E chunked).
 * K segments after the first add into the output.
 */
function runFolded(problem: Problem): void {
  const { device, a, b, out, M, K, N, dtype, transposeA, transposeB } = problem;
  const rowCutList = [...(a.chunked && !transposeA ? rowCuts(a, K) : []), ...rowCuts(out, N)];
  const columnCuts = transposeB && b.chunked ? rowCuts(b, K) : [];
  const kCuts = [
    ...(a.chunked && transposeA ? rowCuts(a, M) : []),
    ...(b.chunked && !transposeB ? rowCuts(b, N) : []),
  ];
  const kSegments =
    K === 0 ? [[0, 0] as [number, number]] : segments(K, kCuts, outerSegmentK(device.tuning, problem));

  if (!transposeA && kSegments.length === 1 && runSmallRows(problem, rowCutList, columnCuts)) return;

  const shape = kernelShape(device, M, problem, columnCuts);
  const tileM = tileRows(shape);
  const tileN = tileCols(shape);
  // Operand rows (output rows of a, output columns of b) from row0, K values from k0.
  const aSource = (m0: number, k0: number): MatrixSource => {
    if (transposeA) {
      const { chunk, firstRow } = chunkOfRow('matmul', a, M, k0);
      return {
        range: chunkRange(chunk),
        offset: (k0 - firstRow) * M + m0,
        rowStride: 1,
        kStride: M,
        batchStride: 0,
      };
    }
    const { chunk, firstRow } = chunkOfRow('matmul', a, K, m0);
    return {
      range: chunkRange(chunk),
      offset: (m0 - firstRow) * K + k0,
      rowStride: K,
      kStride: 1,
      batchStride: 0,
    };
  };
  const bSource = (n0: number, k0: number): MatrixSource => {
    if (transposeB) {
      const { chunk, firstRow } = chunkOfRow('matmul', b, K, n0);
      return {
        range: chunkRange(chunk),
        offset: (n0 - firstRow) * K + k0,
        rowStride: K,
        kStride: 1,
        batchStride: 0,
      };
    }
    const { chunk, firstRow } = chunkOfRow('matmul', b, N, k0);
    return {
      range: chunkRange(chunk),
      offset: (k0 - firstRow) * N + n0,
      rowStride: 1,
      kStride: N,
      batchStride: 0,
    };
  };

  kSegments.forEach(([k0, k1], kIndex) => {
    const k = k1 - k0;
    // Later K segments add into the output; the bias goes in with the first.
    // Operands stored across K (a^T, a plain b: the backward of a linear layer) are read in
    // place along their rows where the layout allows (readsOuter), else packed.
    const outerA =
      device.tuning.matmulOuterOperands &&
      needsPacking(aSource(0, k0), k, dtype) &&
      readsOuter(aSource(0, k0), M, k, dtype, shape.rows) &&
      rowCutList.every((cut) => cut % 4 === 0);
    const outerB =
      device.tuning.matmulOuterOperands &&
      needsPacking(bSource(0, k0), k, dtype) &&
      readsOuter(bSource(0, k0), N, k, dtype, shape.cols) &&
      columnCuts.every((cut) => cut % 4 === 0);
    // Every K segment is scaled; the residual goes in with the first, like the bias.
    const residual = kIndex === 0 ? problem.residual : null;
    const segmentShape = {
      ...shape,
      ...(kIndex === 0 ? {} : { bias: false, accumulate: true }),
      ...(problem.alpha !== 1 ? { scaled: true } : {}),
      ...(residual ? { residual: true } : {}),
      ...(outerA ? { aOuter: true } : {}),
      ...(outerB ? { bOuter: true } : {}),
    };
    const bias = kIndex === 0 ? problem.bias : null;
    const packA = !outerA && needsPacking(aSource(0, k0), k, dtype);
    const packB = !outerB && needsPacking(bSource(0, k0), k, dtype);
    const rowSegments = segments(M, rowCutList, packA ? packedRowLimit(device, k, tileM, 'a') : M);
    const colSegments = segments(N, columnCuts, packB ? packedRowLimit(device, k, tileN, 'b') : N);
    const planA = ([m0, m1]: [number, number]) =>
      planOperand(device, aSource(m0, k0), m1 - m0, k, 1, tileM, dtype, outerA);
    const planB = ([n0, n1]: [number, number]) =>
      planOperand(device, bSource(n0, k0), n1 - n0, k, 1, tileN, dtype, outerB);
    const run = (
      rows: [number, number],
      columns: [number, number],
      aPlan: OperandPlan,
      bPlan: OperandPlan,
    ) => {
      const { chunk, firstRow } = chunkOfRow('matmul', out, N, rows[0]);
      launch(problem, segmentShape, {
        m: rows[1] - rows[0],
        n: columns[1] - columns[0],
        k,
        batches: 1,
        a: aPlan,
        b: bPlan,
        bias,
        c: { range: chunkRange(chunk), offset: (rows[0] - firstRow) * N + columns[0], row: N },
        biasOffset: columns[0],
        residual: residual?.binding('matmul') ?? null,
        batch: null,
      });
    };
    if (colSegments.length === 1) {
      // One b panel set: pack each row segment of a just before its launch (a packed a, as
      // dlogits^T of a tied head, may be far larger than one binding).
      const bPlan = planB(colSegments[0]);
      for (const rows of rowSegments) {
        const aPlan = planA(rows);
        run(rows, colSegments[0], aPlan, bPlan);
        aPlan.temporary?.dispose();
      }
      bPlan.temporary?.dispose();
      return;
    }
    const aPlans = rowSegments.map(planA);
    for (const columns of colSegments) {
      const bPlan = planB(columns);
      rowSegments.forEach((rows, i) => {
        run(rows, columns, aPlans[i], bPlan);
      });
      bPlan.temporary?.dispose();
    }
    for (const plan of aPlans) plan.temporary?.dispose();
  });
  problem.fusedResidual = problem.residual !== null;
}

/**
 * A product of a few rows (decoding): the small-M kernel, which reads every weight value once
 * in place. Returns false where it does not apply.
 */
function runSmallRows(problem: Problem, rowCutList: number[], columnCuts: number[]): boolean {
  const { device, a, b, out, M, K, N, transposeB } = problem;
  // The small-rows kernel has no factor: scaled products take the tiled kernel.
  if (problem.alpha !== 1) return false;
  const rowSegments = segments(M, rowCutList, M);
  const colSegments = segments(N, columnCuts, N);
  const shape = smallRowsShape({
    device,
    rows: Math.max(...rowSegments.map(([m0, m1]) => m1 - m0)),
    K,
    N,
    transposeB,
    bias: problem.bias !== null,
    residual: problem.residual !== null,
    dtype: problem.dtype,
    columnOffsets: colSegments.map(([n0]) => n0),
  });
  if (!shape) return false;
  for (const [n0, n1] of colSegments) {
    const bChunk = chunkOfRow('matmul', b, transposeB ? K : N, transposeB ? n0 : 0);
    const bOffset = transposeB ? (n0 - bChunk.firstRow) * K : n0;
    for (const [m0, m1] of rowSegments) {
      const aChunk = chunkOfRow('matmul', a, K, m0);
      const outChunk = chunkOfRow('matmul', out, N, m0);
      launchSmallRows(device, shape, {
        m: m1 - m0,
        n: n1 - n0,
        K,
        a: { range: chunkRange(aChunk.chunk), offset: (m0 - aChunk.firstRow) * K },
        b: { range: chunkRange(bChunk.chunk), offset: bOffset, row: N },
        c: { range: chunkRange(outChunk.chunk), offset: (m0 - outChunk.firstRow) * N + n0, row: N },
        bias: problem.bias,
        biasOffset: n0,
        residual: problem.residual
          ? { range: problem.residual.binding('matmul'), offset: m0 * N + n0 }
          : null,
      });
    }
  }
  problem.fusedResidual = problem.residual !== null;
  return true;
}

/** A product with batch dimensions that do not fold into M: one launch, batch decoded per workgroup. */
function runBatched(problem: Problem, batch: number[], aBatch: number[], bBatch: number[]): void {
  const { device, a, b, out, M, K, N, dtype, transposeA, transposeB } = problem;
  const aCount = sizeOf(aBatch);
  const bCount = sizeOf(bBatch);
  const collapsed = collapseDims(batch, [
    broadcastIndexStrides(aBatch, batch),
    broadcastIndexStrides(bBatch, batch),
    contiguousStrides(batch),
  ]);
  const batchRank = sizeOf(batch) === 1 ? 0 : collapsed.shape.length;
  if (batchRank > MAX_RANK) {
    throw new TensorError(`matmul: the batch ${formatShape(batch)} needs more than ${MAX_RANK} dimensions`);
  }
  if (out.chunked) {
    throw new TensorError(
      `matmul: the output ${out.describe()} exceeds one storage binding; that is supported only when the batch folds into M (b 2-D, no transposeA)`,
    );
  }
  const baseShape = kernelShape(device, M, problem, []);
  const aSource: MatrixSource = {
    range: a.binding('matmul'),
    offset: 0,
    rowStride: transposeA ? 1 : K,
    kStride: transposeA ? M : 1,
    batchStride: M * K,
  };
  const bSource: MatrixSource = {
    range: b.binding('matmul'),
    offset: 0,
    rowStride: transposeB ? K : 1,
    kStride: transposeB ? 1 : N,
    batchStride: K * N,
  };
  const outer = device.tuning.matmulOuterOperands;
  const outerA = outer && needsPacking(aSource, K, dtype) && readsOuter(aSource, M, K, dtype, baseShape.rows);
  const outerB = outer && needsPacking(bSource, K, dtype) && readsOuter(bSource, N, K, dtype, baseShape.cols);
  const shape = {
    ...baseShape,
    ...(outerA ? { aOuter: true } : {}),
    ...(outerB ? { bOuter: true } : {}),
    ...(problem.alpha !== 1 ? { scaled: true } : {}),
    ...(problem.residual ? { residual: true } : {}),
  };
  // Packed copies hold the whole batch in one binding.
  for (const [source, rows, count, tile, outer] of [
    [aSource, M, aCount, tileRows(shape), outerA],
    [bSource, N, bCount, tileCols(shape), outerB],
  ] as const) {
    const bytes = 16 * count * Math.ceil(rows / tile) * tile * Math.ceil(K / 4);
    if (!outer && needsPacking(source, K, dtype) && bytes > device.maxBindingBytes) {
      throw new TensorError(
        `matmul: the packed copy of a batched operand (${bytes} bytes) exceeds this device's binding limit of ${device.maxBindingBytes} bytes`,
      );
    }
  }
  const aPlan = planOperand(device, aSource, M, K, aCount, tileRows(shape), dtype, outerA);
  const bPlan = planOperand(device, bSource, N, K, bCount, tileCols(shape), dtype, outerB);
  launch(problem, shape, {
    m: M,
    n: N,
    k: K,
    batches: sizeOf(batch),
    a: aPlan,
    b: bPlan,
    bias: problem.bias,
    c: { range: out.binding('matmul'), offset: 0, row: N },
    biasOffset: 0,
    residual: problem.residual?.binding('matmul') ?? null,
    batch:
      batchRank === 0
        ? null
        : {
            shape: collapsed.shape,
            a: collapsed.strides[0].map((s) => s * aPlan.batchStride),
            b: collapsed.strides[1].map((s) => s * bPlan.batchStride),
            c: collapsed.strides[2].map((s) => s * M * N),
          },
  });
  aPlan.temporary?.dispose();
  bPlan.temporary?.dispose();
  problem.fusedResidual = problem.residual !== null;
}

/** Strides, in whole matrices of an operand's own batch, of its batch index broadcast to `batch` (0 where broadcast). */
function broadcastIndexStrides(operand: number[], batch: number[]): number[] {
  const strides = contiguousStrides(operand);
  const out = new Array<number>(batch.length).fill(0);
  const shift = batch.length - operand.length;
  operand.forEach((extent, i) => {
    out[shift + i] = extent === 1 ? 0 : strides[i];
  });
  return out;
}

interface Launch {
  m: number;
  n: number;
  /** Inner dimension of this launch (a K segment of the product). */
  k: number;
  batches: number;
  a: OperandPlan;
  b: OperandPlan;
  bias: Tensor | null;
  c: { range: BufferRange; offset: number; row: number };
  biasOffset: number;
  /** The residual, laid out like the output (read at the output's offsets); shape.residual. */
  residual: BufferRange | null;
  batch: { shape: number[]; a: number[]; b: number[]; c: number[] } | null;
}

function launch(problem: Problem, shape: MatmulKernelShape, job: Launch): void {
  const { device } = problem;
  const bias = job.bias;
  const tilesN = Math.ceil(job.n / tileCols(shape));
  const tilesM = Math.ceil(job.m / tileRows(shape));
  const tiles = tilesN * tilesM * job.batches;
  const values: Record<string, number | number[]> = {
    m: job.m,
    n: job.n,
    k4: Math.ceil(job.k / 4),
    tiles,
    tiles_n: tilesN,
    tiles_m: tilesM,
    m_first: job.n > job.m ? 1 : 0,
    a_offset: job.a.offset,
    a_panel: job.a.panel,
    a_line: job.a.line,
    a_step: job.a.step,
    b_offset: job.b.offset,
    b_panel: job.b.panel,
    b_line: job.b.line,
    b_step: job.b.step,
    c_offset: job.c.offset,
    c_row: job.c.row,
    bias_offset: job.biasOffset,
  };
  values.batch_rank = job.batch?.shape.length ?? 0;
  values.batch_shape = padDims(job.batch?.shape ?? [], 1);
  values.batch_a = padDims(job.batch?.a ?? []);
  values.batch_b = padDims(job.batch?.b ?? []);
  values.batch_c = padDims(job.batch?.c ?? []);
  if (shape.scaled) values.alpha = problem.alpha;
  device.dispatch({
    key: `${KERNELS.matmul}:${matmulKey(shape)}`,
    source: () => matmulSource(shape),
    bindings: [
      job.a.range,
      job.b.range,
      ...(bias ? [bias] : []),
      ...(shape.residual && job.residual ? [job.residual] : []),
      job.c.range,
    ],
    uniforms: { fields: shape.scaled ? MATMUL_SCALED_FIELDS : MATMUL_FIELDS, values },
    workgroups: grid(tiles, device.maxWorkgroupsPerDimension),
  });
}
