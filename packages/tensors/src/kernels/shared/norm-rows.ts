/**
 * Host side shared by the row normalisations (rmsNorm, layerNorm): the check of a per-feature
 * parameter and the chunked launch over whole rows with NORM_FIELDS as uniforms.
 */
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { formatShape } from '../../tensor/shape.js';
import type { BufferRange } from '../../tensor/storage.js';
import type { Tensor } from '../../tensor/tensor.js';
import { chunkRange, forEachChunk } from './chunks.js';
import { assertFloat, assertSameDevice, NORM_FIELDS } from './row-kernel.js';

/** A per-feature parameter (weight, bias) of a row normalisation: float, on x's device, of shape [hidden]. */
export function assertNormParameter(op: string, x: Tensor, parameter: Tensor, what: string): void {
  const hidden = x.shape[x.rank - 1];
  assertSameDevice(op, x, parameter);
  assertFloat(op, parameter, what);
  if (parameter.rank !== 1 || parameter.shape[0] !== hidden) {
    throw new TensorError(
      `${op}: ${what} ${formatShape(parameter.shape)} must have shape [${hidden}] to match the last axis of ${x.describe()}`,
    );
  }
}

/**
 * Launches a row normalisation of `x` into `output` chunk by chunk: a chunk of a tensor above one
 * binding holds whole rows, and the output is split the same way. `bindings` places a chunk's
 * input and output ranges among the kernel's other bindings (weight, bias, statistics).
 */
export function dispatchNormRows(
  op: string,
  x: Tensor,
  output: Tensor,
  kernel: {
    key: string;
    source: () => string;
    width: 1 | 4;
    eps: number;
    /** Rows one workgroup takes (default 1, a workgroup per row). */
    rowsPerWorkgroup?: number;
    bindings: (input: BufferRange, output: BufferRange) => BufferRange[];
  },
): void {
  const device = x.device;
  const hidden = x.shape[x.rank - 1];
  const bytes = x.storage.bytesPerElement;
  forEachChunk(op, [x, output], ([chunk, outputChunk]) => {
    const chunkRows = chunk.elements / hidden;
    device.dispatch({
      key: kernel.key,
      source: kernel.source,
      bindings: kernel.bindings(chunkRange(chunk, bytes), chunkRange(outputChunk, bytes)),
      uniforms: {
        fields: NORM_FIELDS,
        values: {
          rows: chunkRows,
          row_offset: chunk.elementOffset / hidden,
          length: hidden / kernel.width,
          hidden,
          eps: kernel.eps,
        },
      },
      workgroups: grid(
        Math.ceil(chunkRows / (kernel.rowsPerWorkgroup ?? 1)),
        device.maxWorkgroupsPerDimension,
      ),
    });
  });
}
