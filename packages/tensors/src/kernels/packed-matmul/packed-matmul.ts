import { apply, type Rule } from '../../autograd/engine.js';
import { GPU_BACKEND } from '../../autograd/gpu-backend.js';
import { autograd } from '../../autograd/index.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { zeros } from '../../ops/creation.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { workgroupsFor } from '../shared/wgsl.js';
import { BLOCK } from './formats.js';
import {
  FORWARD_FIELDS,
  forwardSource,
  INPUT_GRAD_FIELDS,
  inputGradSource,
  TILE_ROWS,
  UNPACK_FIELDS,
  unpackSource,
} from './packed-matmul-wgsl.js';
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
 * x W^T for a packed frozen weight W [N, K]: x [..., K] f32 gives [..., N] f32. The weight is
 * decoded block by block inside the kernel and products accumulate in f32. A weight split in
 * chunks runs chunk by chunk into column ranges of the output; an output larger than one binding
 * runs in row ranges. x must fit one binding.
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
  const workgroup = device.tuning.elementwiseWorkgroup;
  const key = `${KERNELS.packedMatmul}:${weight.format}:${workgroup}`;
  for (const outChunk of out.chunks) {
    const firstRow = outChunk.elementOffset / N;
    const rows = outChunk.elements / N;
    const tilesM = Math.ceil(rows / TILE_ROWS);
    for (const chunk of weight.chunks) {
      if (chunk.rows === 0) continue;
      const items = chunk.rows * tilesM;
      device.dispatch({
        key,
        source: () => forwardSource(weight.format, workgroup),
        bindings: [xRange, chunk.words.binding(what), whole(outChunk.buffer)],
        uniforms: {
          fields: FORWARD_FIELDS,
          values: {
            m: rows,
            n: chunk.rows,
            k: K,
            blocks: Math.ceil(K / BLOCK),
            row_bytes: weight.rowBytes,
            tiles_m: tilesM,
            x_offset: firstRow * K,
            out_offset: chunk.firstRow,
            out_row: N,
          },
        },
        workgroups: grid(workgroupsFor(items, workgroup), device.maxWorkgroupsPerDimension),
      });
    }
  }
  return out;
}

/**
 * dy W for a packed weight W [N, K]: dy [..., N] f32 gives the input gradient [..., K] f32 of
 * packedMatmul. Chunks of the weight add into the result one after another. dy and the result
 * must fit one binding each.
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
  const workgroup = device.tuning.elementwiseWorkgroup;
  const blocks = Math.ceil(K / BLOCK);
  const tilesM = Math.ceil(M / TILE_ROWS);
  const chunks = weight.chunks.filter((chunk) => chunk.rows > 0);
  chunks.forEach((chunk, index) => {
    device.dispatch({
      key: `${KERNELS.packedMatmulInputGrad}:${weight.format}:${workgroup}`,
      source: () => inputGradSource(weight.format, workgroup),
      bindings: [dyRange, chunk.words.binding(what), dxRange],
      uniforms: {
        fields: INPUT_GRAD_FIELDS,
        values: {
          m: M,
          n: chunk.rows,
          k: K,
          blocks,
          row_bytes: weight.rowBytes,
          tiles_m: tilesM,
          dy_row: N,
          dy_col: chunk.firstRow,
          accumulate: index === 0 ? 0 : 1,
        },
      },
      workgroups: grid(workgroupsFor(blocks * tilesM, workgroup), device.maxWorkgroupsPerDimension),
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
  const blocks = Math.ceil(K / BLOCK);
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
            blocks,
            row_bytes: weight.rowBytes,
            w_row0: start - chunk.firstRow,
            out_row0: start - outFirst,
          },
        },
        workgroups: grid(workgroupsFor((end - start) * blocks, workgroup), device.maxWorkgroupsPerDimension),
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
