import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { attentionCapabilities, useTiledAttention } from '../attention-tiled/attention-tiled.js';
import { tiledAttentionBackward } from '../attention-tiled/attention-tiled-backward.js';
import { fillRange } from '../fill/fill.js';
import { KERNELS } from '../names.js';
import { kernelSource, type StorageBinding, workgroupsFor } from '../shared/wgsl.js';
import { checkSegments } from './attention.js';
import { SOFTCAP_WGSL } from './attention-wgsl.js';
import { packedAttentionStats, packedStatsSpec } from './packed-stats.js';
import { rowLanesWidth } from './row-lanes.js';
import { rowLanesKeyValueGrad, rowLanesQueryGrad } from './row-lanes-backward.js';

export interface AttentionBackwardOptions {
  /** Default true. */
  causal?: boolean;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
  /** u32 or i32 [batch, seqK]: 1 = attend, 0 = padded key (segment ids when `segments`). */
  paddingMask?: Tensor | null;
  /** paddingMask holds segment ids, as attention()'s option: keys of the query's own segment only. */
  segments?: boolean;
  /** Position of query 0 among the keys for causal masking; default seqK - seqQ. */
  queryOffset?: number;
  /**
   * Sliding window, as attention()'s: query i sees only keys j > queryOffset + i - window.
   * Key tiles before a query block's window, and query tiles past a key block's, are skipped.
   */
  window?: number;
  /** Logit soft-capping, as attention()'s: the scores it rebuilds are capped, ds takes the slope. */
  softcap?: number;
}

const FIELDS = [
  { name: 'rows', type: 'u32' as const },
  { name: 'seq_q', type: 'u32' as const },
  { name: 'seq_k', type: 'u32' as const },
  { name: 'heads_q', type: 'u32' as const },
  { name: 'heads_kv', type: 'u32' as const },
  { name: 'group', type: 'u32' as const },
  { name: 'query_offset', type: 'i32' as const },
  { name: 'scale', type: 'f32' as const },
  // 0 = no sliding window.
  { name: 'window', type: 'u32' as const },
  // 0 = no soft-capping.
  { name: 'softcap', type: 'f32' as const },
];

interface Variant {
  dtype: DType;
  /** Elements per load: 4 when headDim is a multiple of 4. */
  width: 1 | 4;
  /** headDim / width: the private arrays' length. */
  vectors: number;
  causal: boolean;
  maskType: DType | null;
  /** The mask holds segment ids (a query sees only keys of its own segment). */
  segments: boolean;
  workgroup: number;
  /** Rows every lane needs are loaded a few vec4s per lane and shared with subgroupBroadcast. */
  subgroups: boolean;
  /** logsumexp and delta are read from one packed buffer (packed-stats.ts: fewer storage buffers). */
  packedStats: boolean;
}

/**
 * Gradients of attention (flash-attention backward): from q, k, v, the forward's output O and
 * row logsumexp L ([batch, headsQ, seqQ], as attention() returns them) and dO, with
 * p_ij = exp(scale q_i . k_j - L_i) recomputed on the fly, D_i = dO_i . O_i and
 * ds_ij = p_ij (dO_i . v_j - D_i):
 *   dq_i = scale sum_j ds_ij k_j,   dk_j = scale sum_i ds_ij q_i,   dv_j = sum_i p_ij dO_i,
 * dk and dv summed over the query heads of each key/value head (GQA). Three dispatches: D per
 * query row; dq with one invocation per query row (attentionBlockQ rows of one head per
 * workgroup, so they read the same keys); dk and dv with one invocation per key row
 * (attentionBlockQ keys of one kv head per workgroup) walking the queries that see it. Nothing of
 * size seqQ x seqK is stored; the price is computing the scores twice, as flash attention does.
 * Where device.tuning.attentionSubgroups allows, the rows all lanes read are shared through
 * subgroupBroadcast instead of loaded by every lane.
 */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  output: Tensor,
  logsumexp: Tensor,
  grad: Tensor,
  options: AttentionBackwardOptions = {},
): { q: Tensor; k: Tensor; v: Tensor } {
  const op = 'attentionBackward';
  for (const t of [q, k, v, output, logsumexp, grad]) {
    t.assertLive();
    if (t.device !== q.device) throw new TensorError(`${op}: tensors live on different devices`);
  }
  const describe = () =>
    `${op}(q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}, output ${formatShape(output.shape)}, logsumexp ${formatShape(logsumexp.shape)}, grad ${formatShape(grad.shape)})`;
  if (q.rank !== 4 || k.rank !== 4 || !sameShape(k.shape, v.shape)) {
    throw new TensorError(
      `${describe()}: q must be [batch, seqQ, headsQ, headDim], k and v [batch, seqK, headsKV, headDim]`,
    );
  }
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const [, seqK, headsKV] = k.shape;
  if (k.shape[0] !== batch || k.shape[3] !== headDim || headsKV === 0 || headsQ % headsKV !== 0) {
    throw new TensorError(
      `${describe()}: k and v must share q's batch and headDim, and headsQ must be a multiple of headsKV`,
    );
  }
  if (!sameShape(output.shape, q.shape) || !sameShape(grad.shape, q.shape)) {
    throw new TensorError(`${describe()}: output and grad must have q's shape`);
  }
  if (!sameShape(logsumexp.shape, [batch, headsQ, seqQ]) || logsumexp.dtype !== 'f32') {
    throw new TensorError(`${describe()}: logsumexp must be f32 [${batch}, ${headsQ}, ${seqQ}]`);
  }
  const dtype = q.dtype;
  if ((dtype !== 'f32' && dtype !== 'f16') || [k, v, output, grad].some((t) => t.dtype !== dtype)) {
    throw new TensorError(`${describe()}: q, k, v, output and grad must share one float dtype`);
  }
  const mask = options.paddingMask ?? null;
  if (mask && (!sameShape(mask.shape, [batch, seqK]) || (mask.dtype !== 'u32' && mask.dtype !== 'i32'))) {
    throw new TensorError(`${describe()}: paddingMask must be u32 or i32 [${batch}, ${seqK}]`);
  }
  const window = options.window;
  if (window !== undefined && !(Number.isInteger(window) && window >= 1 && window < 2 ** 31)) {
    throw new TensorError(`${describe()}: window ${window} must be a positive 32-bit integer`);
  }
  checkSegments(options.segments, mask, options.queryOffset ?? seqK - seqQ, seqQ, seqK, describe);
  const device = q.device;
  const dq = device.empty(q.shape, dtype);
  const dk = device.empty(k.shape, dtype);
  const dv = device.empty(v.shape, dtype);
  if (q.size === 0 || k.size === 0) {
    // No query or no key: the gradients that exist are zero.
    for (const t of [dq, dk, dv]) if (t.size > 0) fillRange(t, 0, 0);
    return { q: dq, k: dk, v: dv };
  }
  if (options.softcap !== undefined && !(Number.isFinite(options.softcap) && options.softcap > 0)) {
    throw new TensorError(`attentionBackward: softcap ${options.softcap} must be a positive number`);
  }
  const width: 1 | 4 = headDim % 4 === 0 ? 4 : 1;
  const workgroup = device.tuning.attentionBlockQ;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const variant: Variant = {
    dtype,
    width,
    vectors: headDim / width,
    causal: options.causal ?? true,
    maskType: mask?.dtype ?? null,
    segments: mask !== null && options.segments === true,
    workgroup,
    subgroups:
      device.tuning.attentionSubgroups &&
      device.gpu.features.has('subgroups') &&
      (info?.subgroupMinSize ?? 0) >= workgroup,
    packedStats: packedAttentionStats(device),
  };
  const values = {
    rows: 0,
    seq_q: seqQ,
    seq_k: seqK,
    heads_q: headsQ,
    heads_kv: headsKV,
    group: headsQ / headsKV,
    query_offset: options.queryOffset ?? seqK - seqQ,
    scale: options.scale ?? 1 / Math.sqrt(headDim),
    window: window ?? 0,
    softcap: options.softcap ?? 0,
  };
  const keyOf = (pass: string) =>
    `${KERNELS.attentionBackward}:${pass}:${dtype}:${width}:${variant.vectors}:${variant.causal}:${variant.maskType}:${variant.segments ? 'segments' : 'padding'}:${variant.workgroup}:${variant.subgroups ? 'sg' : 'lanes'}${variant.packedStats ? ':packed' : ''}`;
  const queryRows = batch * headsQ * seqQ;
  // Packed: delta holds (logsumexp, delta) per query row, and stands for both below.
  const delta = device.empty(variant.packedStats ? [batch, headsQ, seqQ, 2] : [batch, headsQ, seqQ], 'f32');
  const stats = variant.packedStats ? [delta] : [logsumexp, delta];
  const wg = variant.workgroup;
  device.dispatch({
    key: keyOf('delta'),
    source: () => deltaSource(variant),
    bindings: [output, grad, ...(variant.packedStats ? [logsumexp] : []), delta],
    uniforms: { fields: FIELDS, values: { ...values, rows: queryRows } },
    workgroups: grid(workgroupsFor(queryRows, wg), device.maxWorkgroupsPerDimension),
  });
  if (useTiledAttention(attentionCapabilities(device), headDim)) {
    // GPUs: 16 x 16 workgroups with tiles in workgroup memory (kernels/attention-tiled/).
    tiledAttentionBackward({
      q,
      k,
      v,
      grad,
      logsumexp,
      delta,
      packedStats: variant.packedStats,
      mask,
      dq,
      dk,
      dv,
      values: {
        seq_q: seqQ,
        seq_k: seqK,
        heads_q: headsQ,
        heads_kv: headsKV,
        group: headsQ / headsKV,
        query_offset: values.query_offset,
        scale: values.scale,
        empty_logsumexp: Number.POSITIVE_INFINITY,
        causal: variant.causal ? 1 : 0,
        masked: mask ? (variant.segments ? 2 : 1) : 0,
        window: values.window,
        softcap: values.softcap,
      },
    });
    delta.dispose();
    return { q: dq, k: dk, v: dv };
  }
  // One workgroup per block of `wg` query rows (or key rows) of one head.
  const queryBlocks = batch * headsQ * Math.ceil(seqQ / wg);
  const keyBlocks = batch * headsKV * Math.ceil(seqK / wg);
  const rowLanes = rowLanesWidth(device, headDim, dtype);
  if (rowLanes > 0) {
    // Small f32 head dims on CPU rasterisers: lanes own query (key) rows, the other side is
    // broadcast (row-lanes-backward.ts).
    const { rows: _, ...range } = values;
    const job = {
      ...{ q, k, v, grad, logsumexp, delta, packedStats: variant.packedStats, mask, lanes: rowLanes },
      values: {
        ...range,
        empty_logsumexp: Number.POSITIVE_INFINITY,
        causal: variant.causal ? 1 : 0,
        masked: mask ? (variant.segments ? 2 : 1) : 0,
      },
    };
    rowLanesQueryGrad({ ...job, dq });
    rowLanesKeyValueGrad({ ...job, dk, dv });
    delta.dispose();
    return { q: dq, k: dk, v: dv };
  }
  device.dispatch({
    key: keyOf('dq'),
    source: () => queryGradSource(variant),
    bindings: [q, k, v, grad, ...stats, ...(mask ? [mask] : []), dq],
    uniforms: { fields: FIELDS, values: { ...values, rows: queryBlocks } },
    workgroups: grid(queryBlocks, device.maxWorkgroupsPerDimension),
  });
  device.dispatch({
    key: keyOf('dkv'),
    source: () => keyValueGradSource(variant),
    bindings: [q, k, v, grad, ...stats, ...(mask ? [mask] : []), dk, dv],
    uniforms: { fields: FIELDS, values: { ...values, rows: keyBlocks } },
    workgroups: grid(keyBlocks, device.maxWorkgroupsPerDimension),
  });
  delta.dispose();
  return { q: dq, k: dk, v: dv };
}

function types(variant: Variant) {
  const vector = variant.width === 4 ? 'vec4<f32>' : 'f32';
  const storage = (variant.width === 4 ? `vec4<${variant.dtype}>` : variant.dtype) as StorageBinding['type'];
  return { vector, storage, load: (name: string, at: string) => `${vector}(${name}[${at}])` };
}

/**
 * Loads rows that every lane of the workgroup needs (the same address in all lanes) into private
 * arrays: `targets` pairs an array name with the buffer it is read from, `at` is the row's first
 * element (uniform). Plainly, every lane loads every vector. With subgroups, lane l loads vectors
 * l, l + WG, ... and subgroupBroadcast hands each vector to the others (the calls need constant
 * lane indices, so the copy is unrolled).
 */
function sharedRowLoads(variant: Variant, targets: [string, string][], at: string, indent: string): string {
  const { load } = types(variant);
  const n = variant.vectors;
  const wg = variant.workgroup;
  if (!variant.subgroups) {
    const body = targets.map(([array, buffer]) => `${array}[d] = ${load(buffer, `${at} + d`)};`).join(' ');
    return `${indent}for (var d = 0u; d < ${n}u; d++) { ${body} }`;
  }
  const pieces = Math.ceil(n / wg);
  const lines: string[] = [];
  for (const [array, buffer] of targets) {
    for (let p = 0; p < pieces; p++) {
      lines.push(`let ${array}_piece_${p} = ${load(buffer, `${at} + min(${p * wg}u + lane, ${n - 1}u)`)};`);
    }
    for (let d = 0; d < n; d++) {
      lines.push(`${array}[${d}] = subgroupBroadcast(${array}_piece_${Math.floor(d / wg)}, ${d % wg}u);`);
    }
  }
  return lines.map((line) => indent + line).join('\n');
}

/** kernelSource() with the subgroups extension and the `lane` builtin when the variant uses them. */
function sourceFor(variant: Variant, spec: Parameters<typeof kernelSource>[0]): string {
  const source = kernelSource(variant.packedStats ? packedStatsSpec(spec, 'logsumexp', 'delta') : spec);
  if (!variant.subgroups) return source;
  const signature = 'nwg: vec3u) {';
  if (!source.includes(signature))
    throw new TensorError('attentionBackward: kernelSource() main signature not found');
  return `enable subgroups;\n${source.replace(signature, 'nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {')}`;
}

const HELPERS = (vector: string, segments = false) => `
${SOFTCAP_WGSL}${
  segments
    ? `
// Whether query i and key j sit in the same (nonzero) segment: the mask holds segment ids.
fn same_segment(b: u32, i: u32, j: u32) -> bool {
  return padding_mask[b * params.seq_k + j] == padding_mask[b * params.seq_k + u32(i32(i) + params.query_offset)];
}`
    : ''
}
fn dot_row(a: ${vector}, b: ${vector}) -> f32 { return ${vector === 'f32' ? 'a * b' : 'dot(a, b)'}; }
// Whether query i sees key j under the sliding window (always without one): j > i + offset - window.
fn in_window(i: u32, j: u32) -> bool {
  return params.window == 0u || i32(j) + i32(params.window) > params.query_offset + i32(i);
}`;

/**
 * The start of the dq and dk/dv kernels: this workgroup's block of WG rows (queries or keys) of
 * one (batch, head): `first` row, `b` and the head index named `head`.
 */
function blockOfRows(length: 'seq_q' | 'seq_k', heads: 'heads_q' | 'heads_kv', head: string): string {
  return `  let block_id = flat_workgroup(wid, nwg);
  if (block_id >= params.rows) { return; }
  let blocks = (params.${length} + WG - 1u) / WG;
  let bh = block_id / blocks;
  let first = (block_id % blocks) * WG;
  let ${head} = bh % params.${heads};
  let b = bh / params.${heads};`;
}

/** D_i = dO_i . O_i for every query row (b, h, i), rows ordered [batch, headsQ, seqQ]. */
function deltaSource(variant: Variant): string {
  const { vector, storage, load } = types(variant);
  return kernelSource({
    storage: [
      { name: 'output', type: storage, access: 'read' },
      { name: 'grad', type: storage, access: 'read' },
      ...(variant.packedStats
        ? [
            { name: 'logsumexp', type: 'f32' as const, access: 'read' as const },
            { name: 'stats', type: 'vec2<f32>' as const, access: 'read_write' as const },
          ]
        : [{ name: 'delta', type: 'f32' as const, access: 'read_write' as const }]),
    ],
    uniforms: FIELDS,
    workgroupSize: variant.workgroup,
    helpers: HELPERS(vector),
    body: `
  let row = flat_workgroup(wid, nwg) * WG + lid.x;
  if (row >= params.rows) { return; }
  let i = row % params.seq_q;
  let bh = row / params.seq_q;
  let h = bh % params.heads_q;
  let b = bh / params.heads_q;
  let base = ((b * params.seq_q + i) * params.heads_q + h) * ${variant.vectors}u;
  var total = 0.0;
  for (var d = 0u; d < ${variant.vectors}u; d++) { total += dot_row(${load('output', 'base + d')}, ${load('grad', 'base + d')}); }
  ${variant.packedStats ? 'stats[row] = vec2f(logsumexp[row], total);' : 'delta[row] = total;'}`,
  });
}

function inputBindings(variant: Variant): StorageBinding[] {
  const { storage } = types(variant);
  return [
    { name: 'q', type: storage, access: 'read' },
    { name: 'k', type: storage, access: 'read' },
    { name: 'v', type: storage, access: 'read' },
    { name: 'grad', type: storage, access: 'read' },
    { name: 'logsumexp', type: 'f32', access: 'read' },
    { name: 'delta', type: 'f32', access: 'read' },
    ...(variant.maskType ? [{ name: 'padding_mask', type: variant.maskType, access: 'read' as const }] : []),
  ];
}

/**
 * dq_i = scale sum_j p_ij (dO_i . v_j - D_i) k_j. A workgroup takes WG consecutive queries of one
 * (batch, head), one per invocation; key and value rows are addressed from the workgroup id and
 * the loop counter only, so every lane reads the same row (one load for the workgroup on CPU
 * rasterisers), and masked keys give p = 0 by select rather than by divergent control flow.
 */
function queryGradSource(variant: Variant): string {
  const { vector, storage, load } = types(variant);
  const n = variant.vectors;
  const lastKey = variant.causal
    ? 'u32(clamp(params.query_offset + i32(last_query) + 1, 0, i32(params.seq_k)))'
    : 'params.seq_k';
  const visible = [
    'in_range',
    'in_window(i, j)',
    ...(variant.causal ? ['i32(j) <= params.query_offset + i32(i)'] : []),
    ...(variant.maskType ? ['padding_mask[b * params.seq_k + j] != 0'] : []),
    ...(variant.segments ? ['same_segment(b, i, j)'] : []),
  ].join(' && ');
  return sourceFor(variant, {
    storage: [...inputBindings(variant), { name: 'dq', type: storage, access: 'read_write' }],
    uniforms: FIELDS,
    workgroupSize: variant.workgroup,
    helpers: HELPERS(vector, variant.segments),
    body: `
${blockOfRows('seq_q', 'heads_q', 'h')}
  let kv_head = h / params.group;
  let in_range = first + lid.x < params.seq_q;
  let i = min(first + lid.x, params.seq_q - 1u);
  let last_query = min(first + WG, params.seq_q) - 1u;
  let base = ((b * params.seq_q + i) * params.heads_q + h) * ${n}u;
  var q_row: array<${vector}, ${n}>;
  var g_row: array<${vector}, ${n}>;
  var acc: array<${vector}, ${n}>;
  for (var d = 0u; d < ${n}u; d++) {
    q_row[d] = ${load('q', 'base + d')};
    g_row[d] = ${load('grad', 'base + d')};
    acc[d] = ${vector}(0.0);
  }
  let stat = bh * params.seq_q + i;
  let lse = logsumexp[stat];
  let delta_i = delta[stat];
  let end = ${lastKey};
  // Keys before the first query's sliding window are seen by no query of the block.
  var begin = 0u;
  if (params.window > 0u) {
    begin = u32(clamp(params.query_offset + i32(first) - i32(params.window) + 1, 0, i32(params.seq_k)));
  }
  for (var j = begin; j < end; j++) {
    let key = ((b * params.seq_k + j) * params.heads_kv + kv_head) * ${n}u;
    var score = 0.0;
    var dp = 0.0;
    var k_row: array<${vector}, ${n}>;
    var v_row: array<${vector}, ${n}>;
${sharedRowLoads(
  variant,
  [
    ['k_row', 'k'],
    ['v_row', 'v'],
  ],
  'key',
  '    ',
)}
    for (var d = 0u; d < ${n}u; d++) {
      score += dot_row(q_row[d], k_row[d]);
      dp += dot_row(g_row[d], v_row[d]);
    }
    let visible = ${visible};
    let capped = soft_cap(score * params.scale);
    let p = select(0.0, exp(capped - lse), visible);
    let ds = p * (dp - delta_i) * soft_cap_slope(capped);
    for (var d = 0u; d < ${n}u; d++) { acc[d] += ds * k_row[d]; }
  }
  if (in_range) {
    for (var d = 0u; d < ${n}u; d++) { dq[base + d] = ${storage}(acc[d] * params.scale); }
  }`,
  });
}

/**
 * dk_j = scale sum_(h, i) ds_ij q_i and dv_j = sum_(h, i) p_ij dO_i over the query heads h of
 * the key's kv head and the queries i that see key j. A workgroup takes WG consecutive keys of
 * one (batch, kv head), one per invocation, and walks the queries: their rows are addressed from
 * the workgroup id and the loop counters only (one load for the workgroup on CPU rasterisers).
 */
function keyValueGradSource(variant: Variant): string {
  const { vector, storage, load } = types(variant);
  const n = variant.vectors;
  const firstQuery = variant.causal
    ? 'u32(clamp(i32(first) - params.query_offset, 0, i32(params.seq_q)))'
    : '0u';
  const visible = [
    'key_visible',
    'in_window(i, j)',
    ...(variant.causal ? ['i32(j) <= params.query_offset + i32(i)'] : []),
    ...(variant.segments ? ['same_segment(b, i, j)'] : []),
  ].join(' && ');
  return sourceFor(variant, {
    storage: [
      ...inputBindings(variant),
      { name: 'dk', type: storage, access: 'read_write' },
      { name: 'dv', type: storage, access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: variant.workgroup,
    helpers: HELPERS(vector, variant.segments),
    body: `
${blockOfRows('seq_k', 'heads_kv', 'kv_head')}
  let in_range = first + lid.x < params.seq_k;
  let j = min(first + lid.x, params.seq_k - 1u);
  let key = ((b * params.seq_k + j) * params.heads_kv + kv_head) * ${n}u;
  var k_row: array<${vector}, ${n}>;
  var v_row: array<${vector}, ${n}>;
  var dk_acc: array<${vector}, ${n}>;
  var dv_acc: array<${vector}, ${n}>;
  for (var d = 0u; d < ${n}u; d++) {
    k_row[d] = ${load('k', 'key + d')};
    v_row[d] = ${load('v', 'key + d')};
    dk_acc[d] = ${vector}(0.0);
    dv_acc[d] = ${vector}(0.0);
  }
  let key_visible = in_range${variant.maskType ? ' && padding_mask[b * params.seq_k + j] != 0' : ''};
  let first_query = ${firstQuery};
  // Queries past the last key's sliding window see no key of the block: i < last + window - offset.
  var query_end = params.seq_q;
  if (params.window > 0u) {
    let last_key = min(first + WG, params.seq_k) - 1u;
    query_end = u32(clamp(i32(last_key) + i32(params.window) - params.query_offset, 0, i32(params.seq_q)));
  }
  for (var h = kv_head * params.group; h < (kv_head + 1u) * params.group; h++) {
    for (var i = first_query; i < query_end; i++) {
      let stat = (b * params.heads_q + h) * params.seq_q + i;
      let base = ((b * params.seq_q + i) * params.heads_q + h) * ${n}u;
      var q_row: array<${vector}, ${n}>;
      var g_row: array<${vector}, ${n}>;
      var score = 0.0;
      var dp = 0.0;
${sharedRowLoads(
  variant,
  [
    ['q_row', 'q'],
    ['g_row', 'grad'],
  ],
  'base',
  '      ',
)}
      for (var d = 0u; d < ${n}u; d++) {
        score += dot_row(q_row[d], k_row[d]);
        dp += dot_row(g_row[d], v_row[d]);
      }
      let visible = ${visible};
      let capped = soft_cap(score * params.scale);
      let p = select(0.0, exp(capped - logsumexp[stat]), visible);
      let ds = p * (dp - delta[stat]) * soft_cap_slope(capped);
      for (var d = 0u; d < ${n}u; d++) {
        dv_acc[d] += p * g_row[d];
        dk_acc[d] += ds * q_row[d];
      }
    }
  }
  if (in_range) {
    for (var d = 0u; d < ${n}u; d++) {
      dk[key + d] = ${storage}(dk_acc[d] * params.scale);
      dv[key + d] = ${storage}(dv_acc[d]);
    }
  }`,
  });
}
