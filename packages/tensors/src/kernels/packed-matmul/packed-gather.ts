import { type Device, grid } from '../../device/device.js';
import type { Bindable } from '../../device/device-types.js';
import { TensorError } from '../../device/errors.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { workgroupsFor } from '../shared/wgsl.js';
import { GATHER_FIELDS, gatherSource } from './packed-matmul-wgsl.js';
import type { PackedWeight } from './packed-weight.js';

function whole(buffer: GPUBuffer): BufferRange {
  return { buffer, offset: 0, size: buffer.size };
}

/**
 * Rows of a packed frozen table (an embedding [vocab, dim]) for token ids [...] (i32): [..., dim]
 * f32, decoded in the kernel. Ids outside [0, vocab) give rows of zeros. The table may be split
 * in chunks of rows and the output in chunks of tokens; the ids must fit one binding. It takes no
 * gradient (the table is frozen; the ids are integers).
 */
export function packedGather(ids: Tensor, weight: PackedWeight): Tensor {
  const what = `packedGather(${ids.describe()}, ${weight.describe()})`;
  ids.assertLive();
  weight.assertLive();
  if (ids.device !== weight.device) throw new TensorError(`${what}: operands live on different devices`);
  if (ids.dtype !== 'i32') throw new TensorError(`${what}: ids must be i32, got ${ids.dtype}`);
  const device = ids.device;
  const K = weight.cols;
  const out = device.empty([...ids.shape, K], 'f32');
  if (out.size === 0) return out;
  const idsRange = ids.binding(what);
  for (const outChunk of out.chunks) {
    const t0 = outChunk.elementOffset / K;
    encodePackedGather(device, weight, idsRange, whole(outChunk.buffer), outChunk.elements / K, t0, what);
  }
  return out;
}

/**
 * Records the gather of rows of a packed table into `out`: out[t, :] = W[ids[t0 + t], :] for
 * `tokens` tokens (each table chunk one dispatch, the first writing zeros for ids outside the
 * vocabulary). `out` must hold tokens x cols f32 values; packedGather and the fused decoder's
 * embedding lookup (decodeEmbed with a packed table) both record it.
 */
export function encodePackedGather(
  device: Device,
  weight: PackedWeight,
  ids: BufferRange | Bindable,
  out: BufferRange | Bindable,
  tokens: number,
  t0: number,
  what: string,
): void {
  const [vocab, K] = weight.shape;
  const workgroup = device.tuning.elementwiseWorkgroup;
  const quads = Math.ceil(K / 4);
  weight.chunks.forEach((chunk, index) => {
    device.dispatch({
      key: `${KERNELS.packedGather}:${weight.format}:${workgroup}`,
      source: () => gatherSource(weight.format, workgroup),
      bindings: [ids, chunk.words.binding(what), out],
      uniforms: {
        fields: GATHER_FIELDS,
        values: {
          tokens,
          k: K,
          quads,
          row_bytes: weight.rowBytes,
          row0: chunk.firstRow,
          rows: chunk.rows,
          vocab,
          zero_outside: index === 0 ? 1 : 0,
          t0,
        },
      },
      workgroups: grid(workgroupsFor(tokens * quads, workgroup), device.maxWorkgroupsPerDimension),
    });
  });
}
