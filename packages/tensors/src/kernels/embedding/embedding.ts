import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { formatShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'row_vectors', type: 'u32' as const },
  { name: 'first_row', type: 'u32' as const },
  { name: 'rows', type: 'u32' as const },
  { name: 'vocab', type: 'u32' as const },
  { name: 'first_token', type: 'u32' as const },
  { name: 'zero_outside', type: 'u32' as const },
];

/**
 * Gathers rows of `table` [vocab, dim] (f32 or f16) at `ids` (i32 or u32, any shape): the result
 * has shape [...ids.shape, dim] and the table's dtype. The table may be split in chunks of whole
 * rows (larger than one storage binding); the output may be too.
 *
 * Out-of-range ids (negative, or >= vocab) give rows of zeros: a GPU kernel cannot throw, and a
 * zero row (with a zero gradient in scatterAdd) is the harmless choice for pad ids such as -1.
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  table.assertLive();
  ids.assertLive();
  const describe = () =>
    `embedding(table ${table.dtype}${formatShape(table.shape)}, ids ${ids.dtype}${formatShape(ids.shape)})`;
  if (table.rank !== 2) throw new TensorError(`${describe()}: table must be [vocab, dim]`);
  if (table.dtype !== 'f32' && table.dtype !== 'f16')
    throw new TensorError(`${describe()}: table must be f32 or f16`);
  if (ids.dtype !== 'i32' && ids.dtype !== 'u32')
    throw new TensorError(`${describe()}: ids must be i32 or u32`);
  if (ids.device !== table.device) throw new TensorError(`${describe()}: tensors live on different devices`);
  const device = table.device;
  const [vocab, dim] = table.shape;
  if (vocab >= 2 ** 31) throw new TensorError(`${describe()}: vocab must be below 2^31`);
  const out = device.empty([...ids.shape, dim], table.dtype);
  const tokens = ids.size;
  if (tokens === 0 || dim === 0) return out;

  const vector = dim % 4 === 0 ? 4 : 1;
  const element = vector === 4 ? (`vec4<${table.dtype}>` as const) : table.dtype;
  const zero = vector === 4 ? `vec4<${table.dtype}>()` : `${table.dtype}()`;
  const rowVectors = dim / vector;
  const wg = device.tuning.elementwiseWorkgroup;
  const idsBinding = ids.binding('embedding ids');
  const key = `${KERNELS.embedding}:${table.dtype}:${ids.dtype}:${vector}`;
  const source = () =>
    kernelSource({
      storage: [
        { name: 'ids', type: ids.dtype, access: 'read' },
        { name: 'table', type: element, access: 'read' },
        { name: 'out', type: element, access: 'read_write' },
      ],
      uniforms: FIELDS,
      workgroupSize: wg,
      body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  let token = index / params.row_vectors;
  let column = index % params.row_vectors;
  let id = i32(ids[params.first_token + token]);
  let local = id - i32(params.first_row);
  if (local >= 0 && local < i32(params.rows)) {
    out[index] = table[u32(local) * params.row_vectors + column];
  } else if (params.zero_outside == 1u && (id < 0 || id >= i32(params.vocab))) {
    out[index] = ${zero};
  }`,
    });
  // Every output element is written by exactly one launch: the one whose table chunk holds its
  // id, or the first one for ids outside the table.
  for (const outChunk of out.chunks) {
    const firstToken = outChunk.elementOffset / dim;
    const n = (outChunk.elements / dim) * rowVectors;
    table.chunks.forEach((chunk, index) => {
      device.dispatch({
        key,
        source,
        bindings: [idsBinding, whole(chunk.buffer), whole(outChunk.buffer)],
        uniforms: {
          fields: FIELDS,
          values: {
            n,
            row_vectors: rowVectors,
            first_row: chunk.elementOffset / dim,
            rows: chunk.elements / dim,
            vocab,
            first_token: firstToken,
            zero_outside: index === 0 ? 1 : 0,
          },
        },
        workgroups: grid(workgroupsFor(n, wg), device.maxWorkgroupsPerDimension),
      });
    });
  }
  return out;
}

function whole(buffer: GPUBuffer) {
  return { buffer, offset: 0, size: buffer.size };
}
