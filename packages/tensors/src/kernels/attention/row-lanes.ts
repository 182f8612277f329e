import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';
import { type ForwardJob, KEY_LANES_FIELDS, keyLanesHelpers, withLane } from './key-lanes.js';
import { chunkKeyValueBroadcasts, chunkKeyValueLoads, each } from './lane-broadcast-wgsl.js';

/**
 * The training forward of attention at small head dims on CPU rasterisers ("row lanes"): each
 * lane of a one-subgroup workgroup owns ROWS_PER_LANE query rows of one head, in registers, and the
 * workgroup walks the keys in chunks of `promptAttentionChunk`. Every lane loads a different key
 * and value row of the chunk and subgroupBroadcast hands each to all lanes, so a key costs one load
 * for the workgroup's lanes x ROWS_PER_LANE rows, a chunk one rescaling exp per row, and no
 * subgroup reduction is needed at the end (each lane already holds whole rows). The same idea as
 * promptAttention's kernel (prompt-attention.ts), which has no log-sum-exp and no segment ids;
 * this one writes both outputs attention() promises and takes every mask attention() takes.
 *
 * Semantics as attention(): causal from the query offset, padding or segment ids, a sliding window,
 * the soft cap, GQA; f32 only; the log-sum-exp is +Infinity for a row that sees no key. Measured on
 * lavapipe at stories260K's training shape (8 x 256, 8 heads, head dim 8): see
 * docs/architecture/training-step.md.
 */
const ROWS_PER_LANE = 4;

/** Lanes of a row-lanes workgroup, or 0 where attention() keeps its other kernels. */
export function rowLanesWidth(device: Device, headDim: number, dtype: string): number {
  const chunk = device.tuning.promptAttentionChunk;
  const lanes = device.tuning.attentionBlockQ;
  if (chunk === 0 || chunk % lanes !== 0 || dtype !== 'f32' || headDim % 4 !== 0) return 0;
  if (headDim > device.tuning.promptAttentionHeadDim) return 0;
  if (!device.gpu.features.has('subgroups')) return 0;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  // subgroupBroadcast must reach the whole workgroup: a subgroup holds it.
  return (info?.subgroupMinSize ?? 0) >= lanes ? lanes : 0;
}

/** Dispatches the row-lanes forward: one workgroup per lanes x ROWS_PER_LANE query rows of one (batch, head). */
export function rowLanesAttention(job: ForwardJob): void {
  const { q, lanes } = job;
  const device = q.device;
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const chunk = device.tuning.promptAttentionChunk;
  const rowBlocks = Math.ceil(seqQ / (lanes * ROWS_PER_LANE));
  const blocks = batch * headsQ * rowBlocks;
  if (blocks >= 2 ** 32) throw new TensorError('attention: too many query rows');
  device.dispatch({
    key: [KERNELS.attention, 'row-lanes', headDim, lanes, chunk, ROWS_PER_LANE].join(':'),
    source: () => rowLanesSource(headDim, lanes, chunk, ROWS_PER_LANE),
    bindings: [job.q, job.k, job.v, job.mask ?? job.q, job.output, job.logsumexp],
    uniforms: { fields: KEY_LANES_FIELDS, values: { ...job.values, blocks, row_blocks: rowBlocks } },
    workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
  });
}

/**
 * The kernel's WGSL, its row, key and head-dim loops written out (private arrays indexed in loops
 * live in memory on lavapipe). Lane l takes rows first + r lanes + l; key t of a chunk is loaded by
 * lane t % lanes (in its load group t / lanes) and broadcast.
 */
export function rowLanesSource(headDim: number, lanes: number, chunk: number, rows: number): string {
  if (chunk % lanes !== 0) throw new TensorError(`attention: a chunk of ${chunk} keys over ${lanes} lanes`);
  const V = headDim / 4;
  const C = chunk;
  const R = rows;
  const groups = C / lanes;
  const perRow = (r: number) => `
    {
${each(C, (t) =>
  [
    `      let visible_${t} = key_${t} < row_end_${r} && key_${t} >= row_begin_${r} && word_visible(word_${t}, segment_${r});`,
    `      let score_${t} = select(SKIP, soft_cap(${each(V, (c) => `dot(q_${r}_${c}, key_${t}_${c})`, ' + ')}), visible_${t});`,
  ].join('\n'),
)}
      let new_max = max(row_max_${r}, ${each(C - 1, (t) => `max(score_${t}, `, '')}score_${C - 1}${')'.repeat(C - 1)});
      let correction = exp(row_max_${r} - new_max);
${each(C, (t) => `      let p_${t} = select(0.0, exp(score_${t} - new_max), visible_${t});`)}
      row_sum_${r} = row_sum_${r} * correction + ${each(C, (t) => `p_${t}`, ' + ')};
${each(V, (c) => `      acc_${r}_${c} = acc_${r}_${c} * correction + ${each(C, (t) => `p_${t} * value_${t}_${c}`, ' + ')};`)}
      row_max_${r} = new_max;
    }`;
  return withLane(
    kernelSource({
      storage: [
        { name: 'q', type: 'vec4<f32>', access: 'read' },
        { name: 'k', type: 'vec4<f32>', access: 'read' },
        { name: 'v', type: 'vec4<f32>', access: 'read' },
        { name: 'mask', type: 'u32', access: 'read' },
        { name: 'out', type: 'vec4<f32>', access: 'read_write' },
        { name: 'lse', type: 'f32', access: 'read_write' },
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
    each(V, (c) => `  var acc_${r}_${c} = vec4<f32>(0.0);`),
    `  let row_end_${r} = key_end_of(i_${r});`,
    `  let row_begin_${r} = window_begin(i_${r});`,
    `  let segment_${r} = query_segment(b, i_${r});`,
    `  var row_max_${r} = SKIP;`,
    `  var row_sum_${r} = 0.0;`,
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
  // Keys past the walk (the last chunk's tail) are masked like padding.
  `    let lane_word_${g} = select(0u, key_word(b, lane_clamped_${g}), lane_key_${g} < walk_end);`,
])}
${chunkKeyValueBroadcasts(C, V, lanes)}
${each(R, perRow)}
  }
${each(R, (r) =>
  [
    `  if (first + ${r * lanes}u + lane < params.seq_q) {`,
    `    let i = first + ${r * lanes}u + lane;`,
    `    let out_at = ((b * params.seq_q + i) * params.heads_q + head) * DV;`,
    `    let lse_at = (b * params.heads_q + head) * params.seq_q + i;`,
    `    if (row_max_${r} == SKIP) {`,
    '      // No visible key: zeros, not NaN.',
    each(V, (c) => `      out[out_at + ${c}u] = vec4<f32>(0.0);`),
    '      lse[lse_at] = params.empty_logsumexp;',
    '    } else {',
    `      let inverse = 1.0 / row_sum_${r};`,
    each(V, (c) => `      out[out_at + ${c}u] = acc_${r}_${c} * inverse;`),
    `      lse[lse_at] = row_max_${r} + log(row_sum_${r});`,
    '    }',
    '  }',
  ].join('\n'),
)}`,
    }),
  );
}
