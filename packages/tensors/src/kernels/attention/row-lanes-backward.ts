import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { type KernelSourceSpec, kernelSource } from '../shared/wgsl.js';
import { KEY_LANES_FIELDS, type KeyLanesValues, keyLanesHelpers, withLane } from './key-lanes.js';
import { broadcastOf, chunkKeyValueBroadcasts, chunkKeyValueLoads, each } from './lane-broadcast-wgsl.js';
import { packedStatsSpec } from './packed-stats.js';

/**
 * dq of attention's backward in the row-lanes layout of row-lanes.ts, for the same devices and
 * shapes (rowLanesWidth): each lane of a one-subgroup workgroup owns ROWS_PER_LANE query rows of
 * one head with their dO rows, log-sum-exp and D in registers; the workgroup walks the keys the rows
 * see in chunks, every lane loads a different key and value row and subgroupBroadcast hands them
 * to all lanes. dq_i = scale sum_j p_ij (dO_i . v_j - D_i) k_j, p_ij = exp(s_ij - L_i), the score
 * soft-capped and ds taking the cap's slope, as attentionBackward's other kernels.
 */
/**
 * Query rows per lane of the dq kernel and key rows per lane of the dk/dv kernel. On lavapipe at
 * stories260K's step shape (bench/training-attention.mjs, load 4-5) 2 beat 4 in both (dq about 7-8
 * against 10-11 ms, dk/dv 8-11 against 16-17 ms per layer): the backward's rows carry more registers.
 * 1 lost to 2 (dq 10.2-11.5, dk/dv 10.4-12.8 ms), and chunks of 16 keys to chunks of 8 (tuning).
 */
const ROWS_PER_LANE = 2;

const packedKey = (job: { packedStats?: boolean }): string[] => (job.packedStats ? ['packed'] : []);
const statsOf = (job: { logsumexp: Tensor; delta: Tensor; packedStats?: boolean }): Tensor[] =>
  job.packedStats ? [job.delta] : [job.logsumexp, job.delta];
const statsSource = (packed: boolean, spec: KernelSourceSpec): string =>
  kernelSource(packed ? packedStatsSpec(spec, 'logsumexp', 'delta') : spec);
const KEY_ROWS_PER_LANE = 2;

export interface RowLanesQueryGradJob {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  grad: Tensor;
  logsumexp: Tensor;
  /** With packedStats: (logsumexp, delta) per query row (packed-stats.ts), and logsumexp is not bound. */
  delta: Tensor;
  packedStats?: boolean;
  mask: Tensor | null;
  dq: Tensor;
  lanes: number;
  values: Omit<KeyLanesValues, 'blocks' | 'row_blocks'>;
}

/** Dispatches the row-lanes dq kernel: one workgroup per lanes x ROWS_PER_LANE query rows of one (batch, head). */
export function rowLanesQueryGrad(job: RowLanesQueryGradJob): void {
  const { q, lanes } = job;
  const device = q.device;
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const chunk = device.tuning.promptAttentionChunk;
  const rowBlocks = Math.ceil(seqQ / (lanes * ROWS_PER_LANE));
  const blocks = batch * headsQ * rowBlocks;
  if (blocks >= 2 ** 32) throw new TensorError('attentionBackward: too many query rows');
  device.dispatch({
    key: [
      KERNELS.attentionBackward,
      'row-lanes:dq',
      headDim,
      lanes,
      chunk,
      ROWS_PER_LANE,
      ...packedKey(job),
    ].join(':'),
    source: () => queryGradSource(headDim, lanes, chunk, ROWS_PER_LANE, job.packedStats),
    bindings: [job.q, job.k, job.v, job.grad, ...statsOf(job), job.mask ?? job.q, job.dq],
    uniforms: { fields: KEY_LANES_FIELDS, values: { ...job.values, blocks, row_blocks: rowBlocks } },
    workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
  });
}

/** The dq kernel's WGSL, every loop over rows, keys and the head dim written out. */
export function queryGradSource(
  headDim: number,
  lanes: number,
  chunk: number,
  rows: number,
  packed = false,
): string {
  if (chunk % lanes !== 0)
    throw new TensorError(`attentionBackward: a chunk of ${chunk} keys over ${lanes} lanes`);
  const V = headDim / 4;
  const C = chunk;
  const R = rows;
  const groups = C / lanes;
  const perRow = (r: number) => `
    {
${each(C, (t) =>
  [
    `      let visible_${t} = key_${t} < row_end_${r} && key_${t} >= row_begin_${r} && word_visible(word_${t}, segment_${r});`,
    `      let score_${t} = soft_cap(${each(V, (c) => `dot(q_${r}_${c}, key_${t}_${c})`, ' + ')});`,
    `      let p_${t} = select(0.0, exp(score_${t} - lse_${r}), visible_${t});`,
    `      let ds_${t} = p_${t} * (${each(V, (c) => `dot(g_${r}_${c}, value_${t}_${c})`, ' + ')} - delta_${r}) * soft_cap_slope(score_${t});`,
  ].join('\n'),
)}
${each(V, (c) => `      acc_${r}_${c} += ${each(C, (t) => `ds_${t} * key_${t}_${c}`, ' + ')};`)}
    }`;
  return withLane(
    statsSource(packed, {
      storage: [
        { name: 'q', type: 'vec4<f32>', access: 'read' },
        { name: 'k', type: 'vec4<f32>', access: 'read' },
        { name: 'v', type: 'vec4<f32>', access: 'read' },
        { name: 'grad', type: 'vec4<f32>', access: 'read' },
        { name: 'logsumexp', type: 'f32', access: 'read' },
        { name: 'delta', type: 'f32', access: 'read' },
        { name: 'mask', type: 'u32', access: 'read' },
        { name: 'dq', type: 'vec4<f32>', access: 'read_write' },
      ],
      uniforms: KEY_LANES_FIELDS,
      workgroupSize: lanes,
      helpers: keyLanesHelpers({ dtype: 'f32', headDim, lanes }),
      body: `
  let block = flat_workgroup(wid, nwg);
  if (block >= params.blocks) { return; }
  let row_block = block % params.row_blocks;
  let batch_head = block / params.row_blocks;
  let head = batch_head % params.heads_q;
  let b = batch_head / params.heads_q;
  let kv_head = head / params.group;
  let first = row_block * ${R * lanes}u;
  let last = min(first + ${R * lanes}u, params.seq_q) - 1u;
  // This lane's query rows (rows past seq_q repeat the last one and are not stored).
${each(R, (r) =>
  [
    `  let i_${r} = min(first + ${r * lanes}u + lane, last);`,
    `  let q_at_${r} = ((b * params.seq_q + i_${r}) * params.heads_q + head) * DV;`,
    each(V, (c) => `  let q_${r}_${c} = q[q_at_${r} + ${c}u] * params.scale;`),
    each(V, (c) => `  let g_${r}_${c} = grad[q_at_${r} + ${c}u];`),
    each(V, (c) => `  var acc_${r}_${c} = vec4<f32>(0.0);`),
    `  let stat_${r} = batch_head * params.seq_q + i_${r};`,
    `  let lse_${r} = logsumexp[stat_${r}];`,
    `  let delta_${r} = delta[stat_${r}];`,
    `  let row_end_${r} = key_end_of(i_${r});`,
    `  let row_begin_${r} = window_begin(i_${r});`,
    `  let segment_${r} = query_segment(b, i_${r});`,
  ].join('\n'),
)}
  let walk_begin = window_begin(first);
  let walk_end = key_end_of(last);
  let kv_stride = params.heads_kv * DV;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * DV;
  for (var start = walk_begin; start < walk_end; start += ${C}u) {
${chunkKeyValueLoads(groups, V, (g) => [
  `    let lane_key_${g} = start + ${g * lanes}u + lane;`,
  `    let lane_clamped_${g} = min(lane_key_${g}, walk_end - 1u);`,
  `    let lane_at_${g} = kv_base + lane_clamped_${g} * kv_stride;`,
  `    let lane_word_${g} = select(0u, key_word(b, lane_clamped_${g}), lane_key_${g} < walk_end);`,
])}
${chunkKeyValueBroadcasts(C, V, lanes)}
${each(R, perRow)}
  }
${each(R, (r) =>
  [
    `  if (first + ${r * lanes}u + lane < params.seq_q) {`,
    each(V, (c) => `    dq[q_at_${r} + ${c}u] = acc_${r}_${c} * params.scale;`),
    '  }',
  ].join('\n'),
)}`,
    }),
  );
}

export interface RowLanesKeyValueGradJob extends Omit<RowLanesQueryGradJob, 'dq'> {
  dk: Tensor;
  dv: Tensor;
}

/**
 * dk and dv in the row-lanes layout: each lane owns KEY_ROWS_PER_LANE key rows of one kv head (their
 * k, v and the dk, dv sums in registers); the workgroup walks, for every query head of the kv head's
 * group, the queries that can see its keys in chunks, each lane loading a different query's q, dO,
 * log-sum-exp, D and key range, broadcast to all lanes. dk_j = scale sum ds_ij q_i, dv_j = sum p_ij dO_i.
 */
export function rowLanesKeyValueGrad(job: RowLanesKeyValueGradJob): void {
  const { k, lanes } = job;
  const device = k.device;
  const [batch, seqK, headsKV, headDim] = k.shape;
  const chunk = device.tuning.promptAttentionChunk;
  const rowBlocks = Math.ceil(seqK / (lanes * KEY_ROWS_PER_LANE));
  const blocks = batch * headsKV * rowBlocks;
  if (blocks >= 2 ** 32) throw new TensorError('attentionBackward: too many key rows');
  device.dispatch({
    key: [
      KERNELS.attentionBackward,
      'row-lanes:dkv',
      headDim,
      lanes,
      chunk,
      KEY_ROWS_PER_LANE,
      ...packedKey(job),
    ].join(':'),
    source: () => keyValueGradSource(headDim, lanes, chunk, KEY_ROWS_PER_LANE, job.packedStats),
    bindings: [job.q, job.k, job.v, job.grad, ...statsOf(job), job.mask ?? job.q, job.dk, job.dv],
    uniforms: { fields: KEY_LANES_FIELDS, values: { ...job.values, blocks, row_blocks: rowBlocks } },
    workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
  });
}

/** The dk/dv kernel's WGSL, every loop over key rows, queries and the head dim written out. */
export function keyValueGradSource(
  headDim: number,
  lanes: number,
  chunk: number,
  rows: number,
  packed = false,
): string {
  if (chunk % lanes !== 0)
    throw new TensorError(`attentionBackward: a chunk of ${chunk} queries over ${lanes} lanes`);
  const V = headDim / 4;
  const C = chunk;
  const R = rows;
  const groups = C / lanes;
  const from = (name: string, t: number) => broadcastOf(name, t, lanes);
  const perRow = (r: number) => `
    {
${each(C, (t) =>
  [
    `      let visible_${t} = key_${r} < end_${t} && key_${r} >= begin_${t} && word_visible(word_${r}, segment_${t});`,
    `      let score_${t} = soft_cap(${each(V, (c) => `dot(query_${t}_${c}, k_${r}_${c})`, ' + ')});`,
    `      let p_${t} = select(0.0, exp(score_${t} - lse_${t}), visible_${t});`,
    `      let ds_${t} = p_${t} * (${each(V, (c) => `dot(g_${t}_${c}, v_${r}_${c})`, ' + ')} - delta_${t}) * soft_cap_slope(score_${t});`,
  ].join('\n'),
)}
${each(V, (c) => `      dk_${r}_${c} += ${each(C, (t) => `ds_${t} * query_${t}_${c}`, ' + ')};`)}
${each(V, (c) => `      dv_${r}_${c} += ${each(C, (t) => `p_${t} * g_${t}_${c}`, ' + ')};`)}
    }`;
  return withLane(
    statsSource(packed, {
      storage: [
        { name: 'q', type: 'vec4<f32>', access: 'read' },
        { name: 'k', type: 'vec4<f32>', access: 'read' },
        { name: 'v', type: 'vec4<f32>', access: 'read' },
        { name: 'grad', type: 'vec4<f32>', access: 'read' },
        { name: 'logsumexp', type: 'f32', access: 'read' },
        { name: 'delta', type: 'f32', access: 'read' },
        { name: 'mask', type: 'u32', access: 'read' },
        { name: 'dk', type: 'vec4<f32>', access: 'read_write' },
        { name: 'dv', type: 'vec4<f32>', access: 'read_write' },
      ],
      uniforms: KEY_LANES_FIELDS,
      workgroupSize: lanes,
      helpers: keyLanesHelpers({ dtype: 'f32', headDim, lanes }),
      body: `
  let block = flat_workgroup(wid, nwg);
  if (block >= params.blocks) { return; }
  let row_block = block % params.row_blocks;
  let batch_head = block / params.row_blocks;
  let kv_head = batch_head % params.heads_kv;
  let b = batch_head / params.heads_kv;
  let first = row_block * ${R * lanes}u;
  let last = min(first + ${R * lanes}u, params.seq_k) - 1u;
  let kv_stride = params.heads_kv * DV;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * DV;
  // This lane's key rows (rows past seq_k repeat the last one and are not stored).
${each(R, (r) =>
  [
    `  let key_${r} = min(first + ${r * lanes}u + lane, last);`,
    `  let kv_at_${r} = kv_base + key_${r} * kv_stride;`,
    each(V, (c) => `  let k_${r}_${c} = k[kv_at_${r} + ${c}u];`),
    each(V, (c) => `  let v_${r}_${c} = v[kv_at_${r} + ${c}u];`),
    each(V, (c) => `  var dk_${r}_${c} = vec4<f32>(0.0);`),
    each(V, (c) => `  var dv_${r}_${c} = vec4<f32>(0.0);`),
    `  let word_${r} = key_word(b, key_${r});`,
  ].join('\n'),
)}
  // Queries that can see a key of the block: causal, i + offset >= first; windowed, i + offset - window < last.
  var walk_begin = 0u;
  if (params.causal != 0u) { walk_begin = u32(clamp(i32(first) - params.query_offset, 0, i32(params.seq_q))); }
  var walk_end = params.seq_q;
  if (params.window != 0u) {
    walk_end = u32(clamp(i32(last) - params.query_offset + i32(params.window), 0, i32(params.seq_q)));
  }
  for (var member = 0u; member < params.group; member++) {
    let head = kv_head * params.group + member;
    let stat_base = (b * params.heads_q + head) * params.seq_q;
    for (var start = walk_begin; start < walk_end; start += ${C}u) {
${each(groups, (g) =>
  [
    `      let lane_query_${g} = start + ${g * lanes}u + lane;`,
    `      let lane_i_${g} = min(lane_query_${g}, walk_end - 1u);`,
    `      let lane_at_${g} = ((b * params.seq_q + lane_i_${g}) * params.heads_q + head) * DV;`,
    // Queries past the walk see no key.
    `      let lane_end_${g} = select(0u, key_end_of(lane_i_${g}), lane_query_${g} < walk_end);`,
    `      let lane_begin_${g} = window_begin(lane_i_${g});`,
    `      let lane_segment_${g} = query_segment(b, lane_i_${g});`,
    `      let lane_lse_${g} = logsumexp[stat_base + lane_i_${g}];`,
    `      let lane_delta_${g} = delta[stat_base + lane_i_${g}];`,
    each(
      V,
      (c) =>
        `      let lane_q_${c}_${g} = q[lane_at_${g} + ${c}u] * params.scale;\n      let lane_g_${c}_${g} = grad[lane_at_${g} + ${c}u];`,
    ),
  ].join('\n'),
)}
${each(C, (t) =>
  [
    `      let end_${t} = ${from('lane_end', t)};`,
    `      let begin_${t} = ${from('lane_begin', t)};`,
    `      let segment_${t} = ${from('lane_segment', t)};`,
    `      let lse_${t} = ${from('lane_lse', t)};`,
    `      let delta_${t} = ${from('lane_delta', t)};`,
    each(V, (c) => `      let query_${t}_${c} = ${from(`lane_q_${c}`, t)};`),
    each(V, (c) => `      let g_${t}_${c} = ${from(`lane_g_${c}`, t)};`),
  ].join('\n'),
)}
${each(R, perRow)}
    }
  }
${each(R, (r) =>
  [
    `  if (first + ${r * lanes}u + lane < params.seq_k) {`,
    each(V, (c) => `    dk[kv_at_${r} + ${c}u] = dk_${r}_${c};`),
    each(V, (c) => `    dv[kv_at_${r} + ${c}u] = dv_${r}_${c};`),
    '  }',
  ].join('\n'),
)}`,
    }),
  );
}
