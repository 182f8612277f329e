import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange, forEachChunk } from '../shared/chunks.js';
import {
  assertFloat,
  combineOnlineStatistics,
  loadF32,
  onlineStatistics,
  rowHelpers,
  rowWorkgroupFor,
  splitAtAxis,
  storeAs,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';

export type SoftmaxKind = 'softmax' | 'log-softmax';

/** Axes shorter than this take one invocation per row instead of one workgroup per row. */
const ROW_KERNEL_MIN_LENGTH = 32;

const FIELDS = [
  { name: 'outer', type: 'u32' as const },
  { name: 'length', type: 'u32' as const },
  { name: 'inner', type: 'u32' as const },
];

/**
 * exp(x - max) / sum(exp(x - max)) along `axis` (default the last), numerically stable for any
 * magnitude. Two reads of each row: online max-and-sum statistics, then the output. f16 tensors compute in f32 and round on store. Rows of any length (a 151,936-token
 * vocabulary included) take one workgroup each. Tensors split in chunks (above one binding) are
 * supported along the last axis.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxLike('softmax', x, axis);
}

/** (x - max) - log(sum(exp(x - max))) along `axis` (default the last); see `softmax`. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxLike('log-softmax', x, axis);
}

function softmaxLike(kind: SoftmaxKind, x: Tensor, axis: number): Tensor {
  const op = kind === 'softmax' ? 'softmax' : 'logSoftmax';
  assertFloat(op, x);
  const { length, inner } = splitAtAxis(op, x.shape, axis);
  const device = x.device;
  const out = device.empty(x.shape, x.dtype);
  if (out.size === 0) return out;
  if (x.chunked && inner !== 1) {
    out.dispose();
    throw new TensorError(
      `${op}: ${x.describe()} is split in ${x.chunks.length} chunks of whole rows; only its last axis can be normalised`,
    );
  }
  const row = inner === 1 && length >= ROW_KERNEL_MIN_LENGTH;
  const width = row && length % 4 === 0 ? 4 : 1;
  const workgroup = row ? rowWorkgroupFor(device, length / width) : device.tuning.elementwiseWorkgroup;
  const bytes = x.storage.bytesPerElement;
  // A tensor larger than one binding is split in chunks of whole rows; the output, of the same
  // shape and dtype, is split the same way.
  forEachChunk(op, [x, out], ([chunk, outChunk]) => {
    const chunkOuter = chunk.elements / (length * inner);
    device.dispatch({
      key: `${KERNELS.softmax}:${kind}:${row ? 'row' : 'column'}:${x.dtype}:${width}:${workgroup}`,
      source: () => softmaxSource(kind, row, x.dtype, width, workgroup),
      bindings: [chunkRange(chunk, bytes), chunkRange(outChunk, bytes)],
      uniforms: { fields: FIELDS, values: { outer: chunkOuter, length: length / width, inner } },
      workgroups: grid(
        row ? chunkOuter : workgroupsFor(chunkOuter * inner, workgroup),
        device.maxWorkgroupsPerDimension,
      ),
    });
  });
  return out;
}

function softmaxSource(
  kind: SoftmaxKind,
  row: boolean,
  dtype: DType,
  width: 1 | 4,
  workgroup: number,
): string {
  // Loop over the row: one workgroup strides through a contiguous row, or one invocation walks
  // a (possibly strided) column.
  const each = row
    ? 'for (var j = lid.x; j < params.length; j += WG)'
    : 'for (var j = 0u; j < params.length; j++)';
  const at = row ? 'base + j' : 'base + j * params.inner';
  const load = loadF32('x', at, width);
  const header = row
    ? `
  let r = flat_workgroup(wid, nwg);
  if (r >= params.outer) { return; }
  let base = r * params.length;`
    : `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.outer * params.inner) { return; }
  let base = (index / params.inner) * params.length * params.inner + index % params.inner;`;
  const write =
    kind === 'softmax'
      ? `
  let inverse = 1.0 / row_sum;
  ${each} { out[${at}] = ${storeAs(dtype, `exp(${load} - row_max) * inverse`, width)}; }`
      : `
  let log_sum = log(row_sum);
  ${each} { out[${at}] = ${storeAs(dtype, `(${load} - row_max) - log_sum`, width)}; }`;
  return kernelSource({
    storage: [
      { name: 'x', type: vectorType(dtype, width), access: 'read' },
      { name: 'out', type: vectorType(dtype, width), access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: workgroup,
    helpers: rowHelpers(width),
    body: `${header}${onlineStatistics({ loop: each, load, width })}${combineOnlineStatistics(row)}${write}`,
  });
}
