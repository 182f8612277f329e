import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { encodePackedGather } from '../packed-matmul/packed-gather.js';
import { PackedWeight } from '../packed-matmul/packed-weight.js';
import { kernelSource } from '../shared/wgsl.js';

/**
 * hidden[r, :] = table[ids[r], :] for the ids [rows] (i32) a previous step chose on the device:
 * the embedding lookup of a decode step without a round trip to the host. An id outside the
 * table reads row 0 of an f32 table, zeros of a packed one (the host rejects such an id when it
 * reads the tokens back). A packed table (f16/bf16 halves, ggml blocks; frozen) is decoded by
 * the packed gather, each of its chunks of rows one dispatch.
 */
export function decodeEmbed(
  device: Device,
  table: Tensor | PackedWeight,
  ids: Tensor,
  hidden: Tensor,
  /** Multiplies each embedding (Gemma's sqrt(hidden)); a packed table takes one more dispatch. */
  scale = 1,
): void {
  const [vocab, width] = table.shape;
  const rows = ids.size;
  if (table instanceof PackedWeight) {
    if (hidden.dtype !== 'f32' || hidden.size !== rows * width || ids.dtype !== 'i32')
      throw new TensorError(
        `decodeEmbed: table ${table.describe()}, ids ${ids.describe()}, hidden ${hidden.describe()}`,
      );
    const what = 'decodeEmbed';
    encodePackedGather(device, table, ids.binding(what), hidden.binding(what), rows, 0, what);
    // Gemma's scale: one more dispatch over the gathered rows.
    if (scale !== 1) scaleInPlace(device, hidden, scale);
    return;
  }
  if (
    table.dtype !== 'f32' ||
    hidden.dtype !== 'f32' ||
    hidden.size !== rows * width ||
    ids.dtype !== 'i32'
  ) {
    throw new TensorError(
      `decodeEmbed: table ${table.describe()}, ids ${ids.describe()}, hidden ${hidden.describe()}`,
    );
  }
  // One invocation per EMBED_PER vec4s of the output where the width allows (scalars otherwise),
  // strided over the dispatch: 128 x 288 floats as 576 scalar workgroups took 0.6 ms on lavapipe
  // alone, as 36 vec4 workgroups 0.25 ms (bench/prefill-attention.mjs).
  const width4 = width % 4 === 0 ? 4 : 1;
  const vectors = (rows * width) / width4;
  const per = EMBED_PER;
  const invocations = Math.ceil(vectors / per);
  const workgroups = Math.ceil(invocations / 64);
  const fields: UniformField[] = [
    { name: 'count', type: 'u32' },
    { name: 'width', type: 'u32' },
    { name: 'vocab', type: 'u32' },
    { name: 'scale', type: 'f32' },
    { name: 'stride', type: 'u32' },
  ];
  const type = width4 === 4 ? ('vec4<f32>' as const) : ('f32' as const);
  device.dispatch({
    key: `${KERNELS.decode}:embed:${width4}:${per}`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'table', type, access: 'read' },
          { name: 'ids', type: 'i32', access: 'read' },
          { name: 'hidden', type, access: 'read_write' },
        ],
        uniforms: fields,
        workgroupSize: 64,
        body: `
  let first = flat_workgroup(wid, nwg) * WG + lid.x;
  for (var p = 0u; p < ${per}u; p++) {
    let index = first + p * params.stride;
    if (index >= params.count) { return; }
    let row = index / params.width;
    let id = ids[row];
    let token = select(0u, u32(id), id >= 0 && u32(id) < params.vocab);
    hidden[index] = table[token * params.width + index % params.width] * params.scale;
  }`,
      }),
    bindings: [table, ids, hidden],
    uniforms: {
      fields,
      values: { count: vectors, width: width / width4, vocab, scale, stride: workgroups * 64 },
    },
    workgroups: grid(workgroups, device.maxWorkgroupsPerDimension),
  });
}

/** Vectors of the output per invocation of decodeEmbed (strided): fewer workgroups on lavapipe. */
const EMBED_PER = 4;

const ARGMAX_LANES = 256;

/**
 * The end of an argmax kernel of `lanes` lanes: each lane's best (value, index) (index 0xffffffff:
 * none) reduced over the workgroup, the highest value winning and the lowest index among equals,
 * and the choice (-1 when no lane had one) written to ids[row] and the step's token log. Shared by
 * decodeArgmax and decodeHead's candidate argmax; needs `best_value` / `best_index` workgroup
 * arrays of `lanes` entries.
 */
export function argmaxReduceWgsl(lanes: number): string {
  const L = lanes;
  return `  best_value[lid.x] = value;
  best_index[lid.x] = index;
  workgroupBarrier();
  for (var stride = ${L / 2}u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) {
      let other = best_index[lid.x + stride];
      let mine = best_index[lid.x];
      let other_value = best_value[lid.x + stride];
      if (other != 0xffffffffu && (mine == 0xffffffffu || other_value > best_value[lid.x] ||
          (other_value == best_value[lid.x] && other < mine))) {
        best_value[lid.x] = other_value;
        best_index[lid.x] = other;
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let chosen = select(i32(best_index[0]), -1, best_index[0] == 0xffffffffu);
    ids[row] = chosen;
    tokens[params.log_offset + row] = chosen;
  }`;
}

/**
 * The greedy choice of every row of logits [rows, vocab] on the device: the index of the largest
 * value (the lowest index among ties), written to ids [rows] (the next step's input) and to
 * tokens[at * rows + r] (the log the host reads back once for several steps). A row with no
 * largest value (every logit NaN) gets -1.
 */
export function decodeArgmax(device: Device, logits: Tensor, ids: Tensor, tokens: Tensor, at: number): void {
  const [rows, vocab] = logits.shape;
  if (ids.size !== rows || ids.dtype !== 'i32' || tokens.dtype !== 'i32' || tokens.size < (at + 1) * rows) {
    throw new TensorError(
      `decodeArgmax: ids ${ids.describe()} or tokens ${tokens.describe()} do not fit step ${at}`,
    );
  }
  const fields: UniformField[] = [
    { name: 'vocab', type: 'u32' },
    { name: 'log_offset', type: 'u32' },
  ];
  const L = ARGMAX_LANES;
  device.dispatch({
    key: `${KERNELS.decode}:argmax`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'logits', type: 'f32', access: 'read' },
          { name: 'ids', type: 'i32', access: 'read_write' },
          { name: 'tokens', type: 'i32', access: 'read_write' },
        ],
        uniforms: fields,
        workgroupSize: L,
        helpers: `var<workgroup> best_value: array<f32, ${L}>;\nvar<workgroup> best_index: array<u32, ${L}>;`,
        body: `
  let row = wid.x;
  let base = row * params.vocab;
  var value = 0.0;
  var index = 0xffffffffu;
  for (var v = lid.x; v < params.vocab; v += ${L}u) {
    let x = logits[base + v];
    if (index == 0xffffffffu) { if (x == x) { value = x; index = v; } }
    else if (x > value) { value = x; index = v; }
  }
${argmaxReduceWgsl(L)}`,
      }),
    bindings: [logits, ids, tokens],
    uniforms: { fields, values: { vocab, log_offset: at * rows } },
    workgroups: [rows],
  });
}

/**
 * Gemma 2's final logit soft-capping in place: logits = cap tanh(logits / cap), before the argmax
 * or the sampler reads them (tanh's argument clamped: exactly 1 past 15).
 */
export function decodeSoftcap(device: Device, logits: Tensor, cap: number): void {
  if (logits.dtype !== 'f32' || !(cap > 0))
    throw new TensorError(`decodeSoftcap: logits ${logits.describe()} and a positive cap, got ${cap}`);
  const fields: UniformField[] = [
    { name: 'count', type: 'u32' },
    { name: 'cap', type: 'f32' },
  ];
  device.dispatch({
    key: `${KERNELS.decode}:softcap`,
    source: () =>
      kernelSource({
        storage: [{ name: 'logits', type: 'f32', access: 'read_write' }],
        uniforms: fields,
        workgroupSize: 64,
        body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.count) { return; }
  logits[index] = params.cap * tanh(clamp(logits[index] / params.cap, -15.0, 15.0));`,
      }),
    bindings: [logits],
    uniforms: { fields, values: { count: logits.size, cap } },
    workgroups: grid(Math.ceil(logits.size / 64), device.maxWorkgroupsPerDimension),
  });
}

/** values *= factor in place (f32). */
function scaleInPlace(device: Device, values: Tensor, factor: number): void {
  const fields: UniformField[] = [
    { name: 'count', type: 'u32' },
    { name: 'factor', type: 'f32' },
  ];
  device.dispatch({
    key: `${KERNELS.decode}:scale`,
    source: () =>
      kernelSource({
        storage: [{ name: 'values', type: 'f32', access: 'read_write' }],
        uniforms: fields,
        workgroupSize: 64,
        body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.count) { return; }
  values[index] = values[index] * params.factor;`,
      }),
    bindings: [values],
    uniforms: { fields, values: { count: values.size, factor } },
    workgroups: grid(Math.ceil(values.size / 64), device.maxWorkgroupsPerDimension),
  });
}
