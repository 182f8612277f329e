import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource, type StorageBinding } from '../shared/wgsl.js';
import { ATTENTION_PARAM_FIELDS, KEY_RANGE_WGSL, SOFTCAP_WGSL } from './attention-wgsl.js';

/**
 * Attention at small head dims on CPU rasterisers ("key lanes"). The row-per-invocation kernels
 * of attention.ts keep lavapipe's 8-wide SIMD busy only on the few multiply-adds of a head dim of
 * 8 and pay a load, an exp and the loop's bookkeeping per key for every 8 query rows. Here a
 * workgroup is one subgroup of LANES invocations and takes LANES query rows of one head; its lanes
 * split the keys instead (lane l takes keys start + t LANES + l of each tile of LANES x KEYS_PER_LANE
 * keys) and keep an online softmax per query row each. So every load brings a different key, the
 * query rows stay in registers, one tile of KEYS_PER_LANE keys costs one rescaling exp per row,
 * and subgroupMax / subgroupAdd merge the lanes' partial softmaxes once at the end. Lane r then
 * holds query row r's result and stores it.
 *
 * Same semantics as attention(): causal, padding or segment ids, query offset, sliding window,
 * soft-capping, GQA, f32 or f16 storage computed in f32, the log-sum-exp (+Infinity for a row that
 * sees no key).
 */

/**
 * Keys one lane takes per tile: the rescaling exp of the online softmax is paid once per tile.
 * On lavapipe 2 beat 4 and 1 (the unrolled rows and keys outgrow the registers).
 */
const KEYS_PER_LANE = 2;
/**
 * Query rows per lane: the workgroup takes lanes x ROWS_PER_LANE rows, and each key is loaded once
 * for all of them. On lavapipe 2 and 4 were no faster than 1 and compile much longer.
 */
const ROWS_PER_LANE = 1;

export const KEY_LANES_FIELDS = [
  { name: 'blocks', type: 'u32' as const },
  { name: 'row_blocks', type: 'u32' as const },
  ...ATTENTION_PARAM_FIELDS,
];

export type KeyLanesValues = Record<(typeof KEY_LANES_FIELDS)[number]['name'], number>;

/** Lanes of a key-lanes workgroup, or 0 when the device or head dim does not take that path. */
export function keyLanesWidth(device: Device, headDim: number): number {
  const lanes = device.tuning.attentionBlockQ;
  if (headDim > device.tuning.attentionKeyLanesHeadDim) return 0;
  if (!device.gpu.features.has('subgroups')) return 0;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  // subgroupAdd must see the whole workgroup: a subgroup holds it.
  return (info?.subgroupMinSize ?? 0) >= lanes ? lanes : 0;
}

/** Types of one key-lanes variant: rows are loaded as vec4 where the head dim allows. */
export interface KeyLanesLayout {
  dtype: DType;
  headDim: number;
  lanes: number;
}

function layoutTypes(layout: KeyLanesLayout) {
  const width = layout.headDim % 4 === 0 ? 4 : 1;
  const vector = width === 4 ? 'vec4<f32>' : 'f32';
  const stored = (width === 4 ? `vec4<${layout.dtype}>` : layout.dtype) as StorageBinding['type'];
  return { width, vectors: layout.headDim / width, vector, stored };
}

/** kernelSource() with the subgroups extension and the `lane` builtin (subgroup_invocation_id). */
export function withLane(source: string): string {
  const signature = 'nwg: vec3u) {';
  if (!source.includes(signature))
    throw new TensorError('attention: kernelSource() main signature not found');
  return `enable subgroups;\n${source.replace(signature, 'nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {')}`;
}

/** WGSL helpers of the key-lanes kernels: constants, the dot product, the soft cap and the window. */
export function keyLanesHelpers(layout: KeyLanesLayout): string {
  const { vector, vectors } = layoutTypes(layout);
  return `
const DV: u32 = ${vectors}u;
const KPL: u32 = ${KEYS_PER_LANE}u;
// Score of a masked key: exp(SKIP - max) underflows to 0 without infinities.
const SKIP: f32 = -1.0e38;
fn dot_w(a: ${vector}, b: ${vector}) -> f32 { return ${vector === 'f32' ? 'a * b' : 'dot(a, b)'}; }
${SOFTCAP_WGSL}
${KEY_RANGE_WGSL}
// The mask word of key j of batch row b: 1 without a mask, else the padding flag or segment id.
fn key_word(b: u32, j: u32) -> u32 {
  if (params.masked == 0u) { return 1u; }
  return mask[b * params.seq_k + j];
}
// The segment id at query i's position (segment ids only; 0 otherwise).
fn query_segment(b: u32, i: u32) -> u32 {
  if (params.masked != 2u) { return 0u; }
  return mask[b * params.seq_k + min(u32(i32(i) + params.query_offset), params.seq_k - 1u)];
}
// Whether a key whose mask word is 'word' is seen by a query of segment 'segment'.
fn word_visible(word: u32, segment: u32) -> bool {
  return word != 0u && (params.masked != 2u || word == segment);
}`;
}

export interface ForwardJob {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  mask: Tensor | null;
  output: Tensor;
  logsumexp: Tensor;
  lanes: number;
  values: Omit<KeyLanesValues, 'blocks' | 'row_blocks'>;
}

/** Dispatches the key-lanes forward: one workgroup per `lanes` query rows of one (batch, head). */
export function keyLanesAttention(job: ForwardJob): void {
  const { q, lanes } = job;
  const device = q.device;
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const rowBlocks = Math.ceil(seqQ / (lanes * ROWS_PER_LANE));
  const blocks = batch * headsQ * rowBlocks;
  if (blocks >= 2 ** 32) throw new TensorError('attention: too many query rows');
  const layout: KeyLanesLayout = { dtype: q.dtype, headDim, lanes };
  device.dispatch({
    key: [KERNELS.attention, 'key-lanes', q.dtype, headDim, lanes, KEYS_PER_LANE, ROWS_PER_LANE].join(':'),
    source: () => forwardSource(layout),
    bindings: [job.q, job.k, job.v, job.mask ?? job.q, job.output, job.logsumexp],
    uniforms: { fields: KEY_LANES_FIELDS, values: { ...job.values, blocks, row_blocks: rowBlocks } },
    workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
  });
}

/** `count` copies of `line(index)`, joined: the kernels unroll their row and key loops in the source. */
function unrolled(count: number, line: (index: number) => string): string {
  return Array.from({ length: count }, (_, index) => line(index)).join('\n');
}

/** Lists `count` names `prefix_0, prefix_1, ...` as one vector expression list. */
function names(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}_${index}`);
}

/**
 * The forward's WGSL. Loops over the rows, the lane's keys and the head dim are written out in
 * the source (names q_r_c, acc_r_c, ...): private arrays indexed in loops that the shader compiler
 * does not unroll live in memory on lavapipe, and every access becomes a gather or scatter.
 */
function forwardSource(layout: KeyLanesLayout): string {
  const { vector, stored, vectors } = layoutTypes(layout);
  const lanes = layout.lanes;
  const slots = ROWS_PER_LANE;
  const rows = lanes * slots;
  const keys = KEYS_PER_LANE;
  const dims = Array.from({ length: vectors }, (_, c) => c);
  const perRow = (r: number) => `
    {
      // Row ${r}: scores of this lane's keys, then the online-softmax update.
${unrolled(keys, (t) => {
  const dot = dims.map((c) => `dot_w(q_${r}_${c}, key_${t}_${c})`).join(' + ');
  return `      let visible_${t} = key_${t} < row_end_${r} && key_${t} >= row_begin_${r} && word_visible(word_${t}, segment_${r});
      let score_${t} = select(SKIP, soft_cap(${dot}), visible_${t});`;
})}
      let new_max = max(row_max_${r}, max(${names('score', keys).reduce((a, b) => `max(${a}, ${b})`)}, SKIP));
      let correction = exp(row_max_${r} - new_max);
${unrolled(keys, (t) => `      let p_${t} = select(0.0, exp(score_${t} - new_max), score_${t} != SKIP);`)}
      row_sum_${r} = row_sum_${r} * correction + ${names('p', keys).join(' + ')};
${dims
  .map(
    (c) =>
      `      acc_${r}_${c} = acc_${r}_${c} * correction + ${Array.from({ length: keys }, (_, t) => `p_${t} * value_${t}_${c}`).join(' + ')};`,
  )
  .join('\n')}
      row_max_${r} = new_max;
    }`;
  return withLane(
    kernelSource({
      storage: [
        { name: 'q', type: stored, access: 'read' },
        { name: 'k', type: stored, access: 'read' },
        { name: 'v', type: stored, access: 'read' },
        { name: 'mask', type: 'u32', access: 'read' },
        { name: 'out', type: stored, access: 'read_write' },
        { name: 'lse', type: 'f32', access: 'read_write' },
      ],
      uniforms: KEY_LANES_FIELDS,
      workgroupSize: layout.lanes,
      helpers: keyLanesHelpers(layout),
      body: `
  let block = flat_workgroup(wid, nwg);
  if (block >= params.blocks) { return; }
  let row_block = block % params.row_blocks;
  let batch_head = block / params.row_blocks;
  let head = batch_head % params.heads_q;
  let b = batch_head / params.heads_q;
  let kv_head = head / params.group;
  let first = row_block * ${rows}u;
  let last = min(first + ${rows}u, params.seq_q) - 1u;
  // The block's query rows (rows past seq_q repeat the last one and are not stored).
${unrolled(rows, (r) => {
  const lines = [
    `  let i_${r} = min(first + ${r}u, last);`,
    `  let q_at_${r} = ((b * params.seq_q + i_${r}) * params.heads_q + head) * DV;`,
    ...dims.map((c) => `  let q_${r}_${c} = ${vector}(q[q_at_${r} + ${c}u]) * params.scale;`),
    ...dims.map((c) => `  var acc_${r}_${c} = ${vector}(0.0);`),
    `  let row_end_${r} = key_end_of(i_${r});`,
    `  let row_begin_${r} = window_begin(i_${r});`,
    `  let segment_${r} = query_segment(b, i_${r});`,
    `  var row_max_${r} = SKIP;`,
    `  var row_sum_${r} = 0.0;`,
  ];
  return lines.join('\n');
})}
  let walk_begin = window_begin(first);
  let walk_end = key_end_of(last);
  let kv_stride = params.heads_kv * DV;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * DV;
  for (var start = walk_begin; start < walk_end; start += WG * KPL) {
    // This lane's keys of the tile: start + t WG + lane.
${unrolled(keys, (t) => {
  const lines = [
    `    let key_${t} = start + ${t}u * WG + lane;`,
    `    let at_${t} = kv_base + min(key_${t}, params.seq_k - 1u) * kv_stride;`,
    ...dims.map((c) => `    let key_${t}_${c} = ${vector}(k[at_${t} + ${c}u]);`),
    ...dims.map((c) => `    let value_${t}_${c} = ${vector}(v[at_${t} + ${c}u]);`),
    `    let word_${t} = select(0u, key_word(b, min(key_${t}, params.seq_k - 1u)), key_${t} < walk_end);`,
  ];
  return lines.join('\n');
})}
${unrolled(rows, perRow)}
  }
  // Merge the lanes' softmaxes; lane r % WG keeps row r, in slot r / WG.
${unrolled(slots, (slot) =>
  [
    ...dims.map((c) => `  var mine_${slot}_${c} = ${vector}(0.0);`),
    `  var mine_sum_${slot} = 0.0;`,
    `  var mine_max_${slot} = SKIP;`,
  ].join('\n'),
)}
${unrolled(rows, (r) => {
  const slot = Math.floor(r / lanes);
  const lines = [
    `  {`,
    `    let top = subgroupMax(row_max_${r});`,
    `    let weight = select(0.0, exp(row_max_${r} - top), row_max_${r} != SKIP);`,
    `    let here = lane == ${r % lanes}u;`,
    `    mine_sum_${slot} = select(mine_sum_${slot}, subgroupAdd(row_sum_${r} * weight), here);`,
    `    mine_max_${slot} = select(mine_max_${slot}, top, here);`,
    ...dims.map(
      (c) => `    mine_${slot}_${c} = select(mine_${slot}_${c}, subgroupAdd(acc_${r}_${c} * weight), here);`,
    ),
    `  }`,
  ];
  return lines.join('\n');
})}
${unrolled(slots, (slot) =>
  [
    `  {`,
    `    let i = first + ${slot}u * WG + lane;`,
    `    let q_at = ((b * params.seq_q + i) * params.heads_q + head) * DV;`,
    `    let lse_at = (b * params.heads_q + head) * params.seq_q + i;`,
    `    if (i < params.seq_q && mine_max_${slot} == SKIP) {`,
    `      // No visible key: zeros, not NaN.`,
    ...dims.map((c) => `      out[q_at + ${c}u] = ${stored}();`),
    `      lse[lse_at] = params.empty_logsumexp;`,
    `    } else if (i < params.seq_q) {`,
    `      let inverse = 1.0 / mine_sum_${slot};`,
    ...dims.map((c) => `      out[q_at + ${c}u] = ${stored}(mine_${slot}_${c} * inverse);`),
    `      lse[lse_at] = mine_max_${slot} + log(mine_sum_${slot});`,
    `    }`,
    `  }`,
  ].join('\n'),
)}`,
    }),
  );
}
