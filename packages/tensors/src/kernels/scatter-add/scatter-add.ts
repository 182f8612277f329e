import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';

const ORDER_FIELDS = [{ name: 'n', type: 'u32' as const }];

const ADD_FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'tokens', type: 'u32' as const },
  { name: 'row_vectors', type: 'u32' as const },
  { name: 'first_row', type: 'u32' as const },
  { name: 'rows', type: 'u32' as const },
];

/**
 * target[ids[i]] += rows[i] for every i, in place (the gradient of `embedding`). target is
 * [vocab, dim] (f32 or f16, may be split in chunks); ids is i32 or u32 of any shape; rows is
 * [...ids.shape, dim] of target's dtype. Ids outside [0, vocab) are skipped. Returns target.
 *
 * WGSL has no float atomics, so the work is split so that every target element is owned by one
 * invocation, and the result is deterministic (the same bits on every run):
 * 1. a stable rank sort of the ids: token i goes to position #{j : ids[j] < ids[i]} +
 *    #{j < i : ids[j] = ids[i]} (O(n^2) integer compares, n invocations; ~17M compares for
 *    4096 tokens), which groups equal ids into runs in token order;
 * 2. one invocation per (run start, column) adds the run's rows in token order, in f32, to the
 *    target element it owns; the other invocations of the run exit.
 */
export function scatterAdd(target: Tensor, ids: Tensor, rows: Tensor): Tensor {
  for (const t of [target, ids, rows]) t.assertLive();
  const describe = () =>
    `scatterAdd(target ${target.dtype}${formatShape(target.shape)}, ids ${ids.dtype}${formatShape(ids.shape)}, rows ${rows.dtype}${formatShape(rows.shape)})`;
  if (target.rank !== 2) throw new TensorError(`${describe()}: target must be [vocab, dim]`);
  if (target.dtype !== 'f32' && target.dtype !== 'f16') {
    throw new TensorError(`${describe()}: target must be f32 or f16`);
  }
  if (ids.dtype !== 'i32' && ids.dtype !== 'u32')
    throw new TensorError(`${describe()}: ids must be i32 or u32`);
  if (rows.dtype !== target.dtype) throw new TensorError(`${describe()}: rows must have target's dtype`);
  if (ids.device !== target.device || rows.device !== target.device) {
    throw new TensorError(`${describe()}: tensors live on different devices`);
  }
  const [vocab, dim] = target.shape;
  if (!sameShape(rows.shape, [...ids.shape, dim])) {
    throw new TensorError(
      `${describe()}: rows must be [...ids.shape, dim] = ${formatShape([...ids.shape, dim])}`,
    );
  }
  if (vocab >= 2 ** 31) throw new TensorError(`${describe()}: vocab must be below 2^31`);
  const tokens = ids.size;
  if (tokens === 0 || dim === 0) return target;

  const device = target.device;
  const wg = device.tuning.elementwiseWorkgroup;
  const idsBinding = ids.binding('scatterAdd ids');
  const rowsBinding = rows.binding('scatterAdd rows');
  const order = device.empty([tokens], 'u32');
  device.dispatch({
    key: `${KERNELS.scatterAdd}:order:${ids.dtype}`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'ids', type: ids.dtype, access: 'read' },
          { name: 'order', type: 'u32', access: 'read_write' },
        ],
        uniforms: ORDER_FIELDS,
        workgroupSize: wg,
        body: `
  let i = flat_workgroup(wid, nwg) * WG + lid.x;
  if (i >= params.n) { return; }
  let id = i32(ids[i]);
  var position = 0u;
  for (var j = 0u; j < params.n; j++) {
    let other = i32(ids[j]);
    position += select(0u, 1u, other < id || (other == id && j < i));
  }
  order[position] = i;`,
      }),
    bindings: [idsBinding, order],
    uniforms: { fields: ORDER_FIELDS, values: { n: tokens } },
    workgroups: grid(workgroupsFor(tokens, wg), device.maxWorkgroupsPerDimension),
  });

  const vector = dim % 4 === 0 ? 4 : 1;
  const element = vector === 4 ? (`vec4<${target.dtype}>` as const) : target.dtype;
  const widen = vector === 4 ? 'vec4<f32>' : 'f32';
  const narrow = vector === 4 ? `vec4<${target.dtype}>` : target.dtype;
  const rowVectors = dim / vector;
  const n = tokens * rowVectors;
  const key = `${KERNELS.scatterAdd}:add:${target.dtype}:${ids.dtype}:${vector}`;
  const source = () =>
    kernelSource({
      storage: [
        { name: 'ids', type: ids.dtype, access: 'read' },
        { name: 'order', type: 'u32', access: 'read' },
        { name: 'rows', type: element, access: 'read' },
        { name: 'destination', type: element, access: 'read_write' },
      ],
      uniforms: ADD_FIELDS,
      workgroupSize: wg,
      body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  let start = index / params.row_vectors;
  let column = index % params.row_vectors;
  let id = i32(ids[order[start]]);
  // Only the first position of a run of equal ids does the work.
  if (start > 0u && i32(ids[order[start - 1u]]) == id) { return; }
  let local = id - i32(params.first_row);
  if (local < 0 || local >= i32(params.rows)) { return; }
  let at = u32(local) * params.row_vectors + column;
  var sum = ${widen}(destination[at]);
  var p = start;
  loop {
    sum += ${widen}(rows[order[p] * params.row_vectors + column]);
    p++;
    if (p >= params.tokens || i32(ids[order[p]]) != id) { break; }
  }
  destination[at] = ${narrow}(sum);`,
    });
  for (const chunk of target.chunks) {
    device.dispatch({
      key,
      source,
      bindings: [
        idsBinding,
        order,
        rowsBinding,
        { buffer: chunk.buffer, offset: 0, size: chunk.buffer.size },
      ],
      uniforms: {
        fields: ADD_FIELDS,
        values: {
          n,
          tokens,
          row_vectors: rowVectors,
          first_row: chunk.elementOffset / dim,
          rows: chunk.elements / dim,
        },
      },
      workgroups: grid(workgroupsFor(n, wg), device.maxWorkgroupsPerDimension),
    });
  }
  // Returned to the pool once the recorded work is submitted.
  order.dispose();
  return target;
}
