import { apply, type Rule } from '../../autograd/engine.js';
import { GPU_BACKEND } from '../../autograd/gpu-backend.js';
import { autograd } from '../../autograd/index.js';
import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { zeros } from '../../ops/creation.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { workgroupsFor } from '../shared/wgsl.js';
import { UNPACK_FIELDS, unpackSource } from './packed-matmul-wgsl.js';
import { launchRowvec, type PackedRowvecShape } from './packed-rowvec.js';
import {
  PACKED_TILE_FIELDS,
  type PackedTileShape,
  packedTileKey,
  packedTileSource,
} from './packed-tiled-wgsl.js';
import type { PackedWeight } from './packed-weight.js';

function whole(buffer: GPUBuffer): BufferRange {
  return { buffer, offset: 0, size: buffer.size };
}

function checkInput(x: Tensor, weight: PackedWeight, what: string, inner: number): void {
  x.assertLive();
  weight.assertLive();
  if (x.device !== weight.device) throw new TensorError(`${what}: operands live on different devices`);
  if (x.dtype !== 'f32') throw new TensorError(`${what}: ${x.describe()} must be f32 (activations stay f32)`);
  if (x.rank < 1 || x.shape[x.rank - 1] !== inner) {
    throw new TensorError(`${what}: ${x.describe()} must end in ${inner} for a weight ${weight.describe()}`);
  }
}

/**
 * The tile of a packed product on this device: the f32 register kernel's tuning (rows per
 * invocation, lanes, subgroups; kernels/matmul/), 4 output columns per invocation. Products of a
 * few rows (decoding) take a tile of one subgroup's height.
 */
export function packedTileShape(
  device: Device,
  format: PackedWeight['format'],
  layout: PackedTileShape['layout'],
  rows: number,
  vectorA: boolean,
): PackedTileShape {
  const tuning = device.tuning;
  const lanes = tuning.matmulWorkgroup;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const subgroups =
    tuning.matmulSubgroups &&
    device.gpu.features.has('subgroups') &&
    (info?.subgroupMinSize ?? 0) >= lanes &&
    tuning.matmulTileRows % lanes === 0;
  const common = { format, layout, cols: 4, vectorA };
  if (subgroups) {
    const height = rows <= lanes ? lanes : tuning.matmulTileRows;
    return { ...common, rows: height, lanesN: lanes, lanesM: 1, subgroups: true };
  }
  const lanesN = gcd(lanes, 16);
  return { ...common, rows: tuning.matmulTileRows, lanesN, lanesM: lanes / lanesN, subgroups: false };
}

/**
 * The one-row product's shape (packed-rowvec.ts: lanes split K) for a product of `rows` rows, or
 * null where the tiled kernel takes it: more rows than the class's `matmulSmallRowsMax`, the
 * rule of the f32 small-rows matmul, with that kernel's lanes and columns.
 */
export function packedRowvecShape(
  device: Device,
  format: PackedWeight['format'],
  rows: number,
): PackedRowvecShape | null {
  const tuning = device.tuning;
  if (rows < 1 || rows > tuning.matmulSmallRowsMax) return null;
  const lanes = Math.max(1, tuning.matmulSmallRowsLanes);
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const subgroups = device.gpu.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= lanes;
  return { format, rows, lanes, cols: Math.max(1, tuning.matmulSmallRowsCols), subgroups };
}

function gcd(x: number, y: number): number {
  return y === 0 ? x : gcd(y, x % y);
}

interface TileLaunch {
  a: BufferRange;
  w: BufferRange;
  out: BufferRange;
  m: number;
  n: number;
  inner: number;
  aOffset: number;
  aRow: number;
  cOffset: number;
  cRow: number;
  wRows: number;
  rowBytes: number;
  accumulate: boolean;
}

function launchTile(device: Device, shape: PackedTileShape, job: TileLaunch): void {
  const tilesM = Math.ceil(job.m / (shape.rows * shape.lanesM));
  const tilesN = Math.ceil(job.n / (shape.cols * shape.lanesN));
  const tiles = tilesM * tilesN;
  const name = shape.layout === 'forward' ? KERNELS.packedMatmul : KERNELS.packedMatmulInputGrad;
  device.dispatch({
    key: `${name}:${packedTileKey(shape)}`,
    source: () => packedTileSource(shape),
    bindings: [job.a, job.w, job.out],
    uniforms: {
      fields: PACKED_TILE_FIELDS,
      values: {
        m: job.m,
        n: job.n,
        inner: job.inner,
        tiles,
        tiles_m: tilesM,
        a_offset: job.aOffset,
        a_row: job.aRow,
        c_offset: job.cOffset,
        c_row: job.cRow,
        w_rows: job.wRows,
        row_bytes: job.rowBytes,
        accumulate: job.accumulate ? 1 : 0,
      },
    },
    workgroups: grid(tiles, device.maxWorkgroupsPerDimension),
  });
}

/**
 * x W^T for a packed frozen weight W [N, K]: x [..., K] f32 gives [..., N] f32. A tiled kernel
 * (packed-tiled-wgsl.ts) decodes each tile of the weight once per tile of rows and accumulates in
 * f32; a product of a few rows (decoding; packedRowvecShape) takes the one-row kernel, whose
 * lanes split K (packed-rowvec.ts). A weight split in chunks runs chunk by chunk into column ranges of the output; an output
 * larger than one binding runs in row ranges. x must fit one binding.
 */
export function packedMatmul(x: Tensor, weight: PackedWeight): Tensor {
  const what = `packedMatmul(${x.describe()}, ${weight.describe()})`;
  checkInput(x, weight, what, weight.cols);
  const device = x.device;
  const K = weight.cols;
  const N = weight.rows;
  const out = device.empty([...x.shape.slice(0, -1), N], 'f32');
  if (out.size === 0) return out;
  if (K === 0) {
    out.dispose();
    return zeros(device, [...x.shape.slice(0, -1), N]);
  }
  const xRange = x.binding(what);
  for (const outChunk of out.chunks) {
    const firstRow = outChunk.elementOffset / N;
    const rows = outChunk.elements / N;
    const shape = packedTileShape(device, weight.format, 'forward', rows, K % 4 === 0);
    const rowvec = packedRowvecShape(device, weight.format, rows);
    for (const chunk of weight.chunks) {
      if (chunk.rows === 0) continue;
      if (rowvec) {
        launchRowvec(device, rowvec, {
          a: xRange,
          w: chunk.words.binding(what),
          out: whole(outChunk.buffer),
          m: rows,
          n: chunk.rows,
          inner: K,
          aOffset: firstRow * K,
          cOffset: chunk.firstRow,
          cRow: N,
          rowBytes: weight.rowBytes,
        });
        continue;
      }
      launchTile(device, shape, {
        a: xRange,
        w: chunk.words.binding(what),
        out: whole(outChunk.buffer),
        m: rows,
        n: chunk.rows,
        inner: K,
        aOffset: firstRow * K,
        aRow: K,
        cOffset: chunk.firstRow,
        cRow: N,
        wRows: chunk.rows,
        rowBytes: weight.rowBytes,
        accumulate: false,
      });
    }
  }
  return out;
}

/**
 * dy W for a packed weight W [N, K]: dy [..., N] f32 gives the input gradient [..., K] f32 of
 * packedMatmul, by the same tiled kernel with the weight's rows as the inner dimension. Chunks of
 * the weight add into the result one after another. dy and the result must fit one binding each.
 */
export function packedMatmulInputGrad(dy: Tensor, weight: PackedWeight): Tensor {
  const what = `packedMatmulInputGrad(${dy.describe()}, ${weight.describe()})`;
  checkInput(dy, weight, what, weight.rows);
  const device = dy.device;
  const K = weight.cols;
  const N = weight.rows;
  const M = dy.size / Math.max(N, 1);
  if (N === 0) return zeros(device, [...dy.shape.slice(0, -1), K]);
  const dx = device.empty([...dy.shape.slice(0, -1), K], 'f32');
  if (dx.size === 0) return dx;
  const dyRange = dy.binding(what);
  const dxRange = dx.binding(what);
  const chunks = weight.chunks.filter((chunk) => chunk.rows > 0);
  chunks.forEach((chunk, index) => {
    const shape = packedTileShape(
      device,
      weight.format,
      'inputGrad',
      M,
      N % 4 === 0 && chunk.firstRow % 4 === 0,
    );
    launchTile(device, shape, {
      a: dyRange,
      w: chunk.words.binding(what),
      out: dxRange,
      m: M,
      n: K,
      inner: chunk.rows,
      aOffset: chunk.firstRow,
      aRow: N,
      cOffset: 0,
      cRow: K,
      wRows: chunk.rows,
      rowBytes: weight.rowBytes,
      accumulate: index > 0,
    });
  });
  return dx;
}

/** The weight decoded to an f32 tensor [N, K] (split in chunks where it exceeds one binding). */
export function unpackWeight(weight: PackedWeight): Tensor {
  weight.assertLive();
  const device = weight.device;
  const [N, K] = weight.shape;
  const out = device.empty([N, K], 'f32');
  if (out.size === 0) return out;
  const workgroup = device.tuning.elementwiseWorkgroup;
  const quads = Math.ceil(K / 4);
  for (const outChunk of out.chunks) {
    const outFirst = outChunk.elementOffset / K;
    const outEnd = outFirst + outChunk.elements / K;
    for (const chunk of weight.chunks) {
      const start = Math.max(outFirst, chunk.firstRow);
      const end = Math.min(outEnd, chunk.firstRow + chunk.rows);
      if (end <= start) continue;
      device.dispatch({
        key: `${KERNELS.packedUnpack}:${weight.format}:${workgroup}`,
        source: () => unpackSource(weight.format, workgroup),
        bindings: [chunk.words.binding('unpackWeight'), whole(outChunk.buffer)],
        uniforms: {
          fields: UNPACK_FIELDS,
          values: {
            rows: end - start,
            k: K,
            quads,
            row_bytes: weight.rowBytes,
            w_row0: start - chunk.firstRow,
            out_row0: start - outFirst,
          },
        },
        workgroups: grid(workgroupsFor((end - start) * quads, workgroup), device.maxWorkgroupsPerDimension),
      });
    }
  }
  return out;
}

/** Only x is differentiable: the packed weight is frozen. */
const PACKED_LINEAR: Rule = {
  inputs: (args) => [args[0]],
  forward: (_ops, args) => packedMatmul(args[0] as Tensor, args[1] as PackedWeight),
  backward: (_ops, grad, _saved, context) =>
    [
      context.needs[0]
        ? packedMatmulInputGrad(grad as unknown as Tensor, context.args[1] as PackedWeight)
        : null,
    ] as never,
};

/**
 * The differentiable x W^T (+ bias) for a packed frozen weight: records on the tape when x needs
 * a gradient (its backward is packedMatmulInputGrad); the weight and bias take none.
 */
export function packedLinear(x: Tensor, weight: PackedWeight, bias: Tensor | null = null): Tensor {
  const product = apply(GPU_BACKEND, PACKED_LINEAR, [x, weight]) as Tensor;
  if (!bias) return product;
  return autograd.add(product, bias);
}
