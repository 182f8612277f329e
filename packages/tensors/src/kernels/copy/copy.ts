import { TensorError } from '../../device/errors.js';
import { DTYPE_BYTES } from '../../tensor/dtype.js';
import { collapseDims, type Shape, sizeOf } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { elementwiseGrid } from '../shared/elementwise-loop.js';
import { MAX_RANK, padDims, stridedFields, stridedOffsets } from '../shared/strided.js';
import { kernelSource } from '../shared/wgsl.js';

/**
 * A strided region copy: for every coordinate c of `shape`,
 * target[targetOffset + sum c_d * targetStrides_d] = source[sourceOffset + sum c_d * sourceStrides_d].
 * Strides and offsets count elements.
 */
export interface CopyRegion {
  shape: Shape;
  sourceOffset: number;
  sourceStrides: readonly number[];
  targetOffset: number;
  targetStrides: readonly number[];
}

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'input_offset', type: 'u32' as const },
  { name: 'output_offset', type: 'u32' as const },
  ...stridedFields(['input', 'output']),
];

/**
 * Records the copy of `region` from `source` into `target` (same dtype, one binding each). The
 * one kernel behind transpose, permute, slice, concat and contiguousCopy: dimensions that both
 * sides walk contiguously are merged first; a copy that is contiguous on both sides (and
 * 4-byte aligned) becomes a buffer-to-buffer copy, anything else one invocation per element with
 * the offsets unrolled for the merged rank. 32-bit dtypes copy as u32 bits (NaN payloads intact),
 * f16 as f16. (`target` is a reserved word in WGSL: the bindings are input and output.)
 */
export function stridedCopy(what: string, source: Tensor, target: Tensor, region: CopyRegion): void {
  if (source.dtype !== target.dtype) {
    throw new TensorError(
      `${what}: cannot copy ${source.describe()} into ${target.describe()} (dtypes differ)`,
    );
  }
  const count = sizeOf(region.shape);
  if (count === 0) return;
  const device = source.device;
  const sourceRange = source.binding(what);
  const targetRange = target.binding(what);
  const collapsed = collapseDims(region.shape, [[...region.sourceStrides], [...region.targetStrides]]);
  const rank = collapsed.shape.length;
  const bytes = DTYPE_BYTES[source.dtype];
  const contiguous =
    count === 1 || (rank === 1 && collapsed.strides[0][0] === 1 && collapsed.strides[1][0] === 1);
  if (
    contiguous &&
    (region.sourceOffset * bytes) % 4 === 0 &&
    (region.targetOffset * bytes) % 4 === 0 &&
    ((count * bytes) % 4 === 0 || region.targetOffset + count === target.size)
  ) {
    // A trailing odd f16 may copy two bytes past the end of the target's data, inside its binding.
    const size = Math.ceil((count * bytes) / 4) * 4;
    device.copyBuffer(
      { buffer: sourceRange.buffer, offset: region.sourceOffset * bytes, size },
      { buffer: targetRange.buffer, offset: region.targetOffset * bytes, size },
    );
    return;
  }
  if (rank > MAX_RANK) {
    throw new TensorError(`${what}: the copy needs ${rank} dimensions after merging, more than ${MAX_RANK}`);
  }
  const elementType = source.dtype === 'f16' ? 'f16' : 'u32';
  device.dispatch({
    key: `${KERNELS.copy}:${elementType}:${rank}`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'input', type: elementType, access: 'read' },
          { name: 'output', type: elementType, access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: device.tuning.elementwiseWorkgroup,
        body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
${stridedOffsets(rank, ['input', 'output'])}
  output[params.output_offset + offset_output] = input[params.input_offset + offset_input];`,
      }),
    bindings: [sourceRange, targetRange],
    uniforms: {
      fields: FIELDS,
      values: {
        n: count,
        input_offset: region.sourceOffset,
        output_offset: region.targetOffset,
        shape: padDims(collapsed.shape, 1),
        stride_input: padDims(collapsed.strides[0]),
        stride_output: padDims(collapsed.strides[1]),
      },
    },
    workgroups: elementwiseGrid(device, count, 1),
  });
}
