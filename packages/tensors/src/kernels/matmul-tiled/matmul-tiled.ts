import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { broadcastShapes, collapseDims, contiguousStrides, formatShape, sizeOf } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { MAX_RANK, padDims } from '../shared/strided.js';
import { TILED_FIELDS, type TiledShape, tiledKey, tiledSource, tiledTile } from './matmul-tiled-wgsl.js';
import type { MatmulSelection } from './select-variant.js';
import {
  type SubgroupMatrixShape,
  subgroupMatrixKey,
  subgroupMatrixLayout,
  subgroupMatrixSource,
  subgroupMatrixTile,
} from './subgroup-matrix-wgsl.js';

export interface TiledProblem {
  a: Tensor;
  b: Tensor;
  /** [...batch, M, N], a's dtype, one storage binding. */
  out: Tensor;
  bias: Tensor | null;
  transposeA: boolean;
  transposeB: boolean;
  M: number;
  K: number;
  N: number;
}

/**
 * Runs a x b (NumPy batch broadcasting, optional transposes and bias) with the workgroup-tiled,
 * subgroup-tiled or subgroup-matrix kernel, reading both operands in place: no packing copy, f16 stays f16 in memory.
 * A batch over a alone folds into M; other batches are decoded per workgroup with per-operand
 * strides (0 where broadcast). Every tensor must fit one storage binding.
 */
export function runTiledMatmul(problem: TiledProblem, selection: MatmulSelection): void {
  const { a, b, out, bias, transposeA, transposeB, M, K, N } = problem;
  const tiledVariants = ['workgroup-tiled', 'subgroup-tiled', 'subgroup-matrix'];
  if (!tiledVariants.includes(selection.variant)) {
    throw new TensorError(`runTiledMatmul: ${selection.variant} is not a tiled variant`);
  }
  const device = a.device;
  const dtype = a.dtype as 'f32' | 'f16';
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch);
  const folded = sizeOf(bBatch) === 1 && !transposeA;
  const rows = folded ? sizeOf(aBatch) * M : M;

  // Element strides of (row, k) per operand: a's rows are output rows, b's output columns.
  const aRow = transposeA ? 1 : K;
  const aK = transposeA ? M : 1;
  const bRow = transposeB ? K : 1;
  const bK = transposeB ? 1 : N;
  const vector = (kStride: number) => kStride === 1 && K % 4 === 0;
  const shape: TiledShape = {
    sharing: selection.variant === 'workgroup-tiled' ? 'workgroup' : 'subgroup',
    perThread: selection.perThread,
    lanes: selection.lanes,
    rows: selection.rows,
    dtype,
    a: { vector: vector(aK), kContiguous: aK === 1 },
    b: { vector: vector(bK), kContiguous: bK === 1 },
    bias: bias !== null,
  };
  let tile = tiledTile(shape);
  let key = `${KERNELS.matmul}:tiled:${tiledKey(shape)}`;
  let source = () => tiledSource(shape);
  if (selection.variant === 'subgroup-matrix') {
    if (!selection.subgroupMatrix)
      throw new TensorError('runTiledMatmul: subgroup-matrix without a configuration');
    const { config, lanes, emulated } = selection.subgroupMatrix;
    const matrices: SubgroupMatrixShape = {
      config,
      lanes,
      ...subgroupMatrixLayout(config),
      dtype,
      a: shape.a,
      b: shape.b,
      bias: shape.bias,
      emulated,
    };
    tile = subgroupMatrixTile(matrices);
    key = `${KERNELS.matmul}:sgmatrix:${subgroupMatrixKey(matrices)}`;
    source = () => subgroupMatrixSource(matrices);
  }
  const tilesM = Math.ceil(rows / tile.rows);
  const tilesN = Math.ceil(N / tile.cols);
  let batchShape: number[] = [];
  let strides: number[][] = [[], [], []];
  if (!folded && sizeOf(batch) > 1) {
    const collapsed = collapseDims(batch, [
      broadcastStrides(aBatch, batch, M * K),
      broadcastStrides(bBatch, batch, K * N),
      contiguousStrides(batch).map((s) => s * M * N),
    ]);
    batchShape = collapsed.shape;
    strides = collapsed.strides;
  }
  if (batchShape.length > MAX_RANK) {
    throw new TensorError(`matmul: the batch ${formatShape(batch)} needs more than ${MAX_RANK} dimensions`);
  }
  const tiles = tilesM * tilesN * (folded ? 1 : sizeOf(batch));
  if (tiles >= 2 ** 32) throw new TensorError(`matmul: ${tiles} tiles exceed one dispatch`);
  device.dispatch({
    key,
    source,
    bindings: [a.binding('matmul'), b.binding('matmul'), ...(bias ? [bias] : []), out.binding('matmul')],
    uniforms: {
      fields: TILED_FIELDS,
      values: {
        m: rows,
        n: N,
        k: K,
        tiles_n: tilesN,
        tiles_m: tilesM,
        tiles,
        a_offset: 0,
        a_row: aRow,
        a_k: aK,
        b_offset: 0,
        b_row: bRow,
        b_k: bK,
        batch_rank: batchShape.length,
        batch_shape: padDims(batchShape, 1),
        batch_a: padDims(strides[0]),
        batch_b: padDims(strides[1]),
        batch_c: padDims(strides[2]),
      },
    },
    workgroups: grid(tiles, device.maxWorkgroupsPerDimension),
  });
}

/** Element strides of an operand's batch index broadcast to `batch` (0 where broadcast). */
function broadcastStrides(operand: number[], batch: number[], matrix: number): number[] {
  const strides = contiguousStrides(operand);
  const out = new Array<number>(batch.length).fill(0);
  const shift = batch.length - operand.length;
  operand.forEach((extent, i) => {
    out[shift + i] = extent === 1 ? 0 : strides[i] * matrix;
  });
  return out;
}
