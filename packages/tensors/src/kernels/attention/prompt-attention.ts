import { type Device, grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';
import { type AttentionOptions, attention } from './attention.js';
import { ATTENTION_PARAM_FIELDS, KEY_RANGE_WGSL, SOFTCAP_WGSL } from './attention-wgsl.js';
import { chunkKeyValueBroadcasts, chunkKeyValueLoads, each } from './lane-broadcast-wgsl.js';

/** What promptAttention takes: attention()'s options without segment ids. */
export type PromptAttentionOptions = Omit<AttentionOptions, 'segments'>;

const FIELDS = [
  { name: 'blocks', type: 'u32' as const },
  { name: 'row_blocks', type: 'u32' as const },
  ...ATTENTION_PARAM_FIELDS,
];

/**
 * A prompt's causal attention (the tiled prefill's, over the KV cache): attention()'s output
 * without the log-sum-exp, which nothing after a prefill reads. Where the device's tuning sets
 * `promptAttentionChunk` and `promptAttentionHeadDim` (CPU rasterisers), the device has subgroups
 * and q is f32 with a head dim that is a multiple of 4 and at most promptAttentionHeadDim, it runs
 * the chunked kernel below; otherwise it is attention() itself. Same masking as attention():
 * causal from `queryOffset`, a padding mask [batch, seqK], a sliding window, the soft-cap, GQA.
 *
 * The chunked kernel: a workgroup is one subgroup of `lanes` lanes taking PROMPT_ROWS_PER_LANE
 * query rows each, all of one head, in registers; it walks the keys up to its last row's causal end
 * in chunks of `promptAttentionChunk` keys. Each lane loads whole key and value rows of the chunk
 * (a different row per lane, so every load brings new data), subgroupBroadcast hands each row to
 * every lane once, and every row of every lane scores the chunk, rescales once (one exp) and adds
 * its p.v terms, all written out in the source: no private arrays, barriers or reductions. At
 * stories260K's head dim 8 it took about 0.35-0.45x the key-lanes kernel's time on lavapipe.
 */
export function promptAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: PromptAttentionOptions = {},
): Tensor {
  const device = q.device;
  const chunk = device.tuning.promptAttentionChunk;
  const lanes = promptAttentionLanes(device);
  const [batch, seqQ, headsQ, headDim] = q.shape;
  if (
    lanes === 0 ||
    headDim > device.tuning.promptAttentionHeadDim ||
    q.rank !== 4 ||
    q.dtype !== 'f32' ||
    headDim % 4 !== 0 ||
    k.rank !== 4
  ) {
    const { output, logsumexp } = attention(q, k, v, options);
    logsumexp.dispose();
    return output;
  }
  for (const t of [q, k, v]) t.assertLive();
  const mask = options.paddingMask;
  mask?.assertLive();
  const [batchK, seqK, headsKV] = k.shape;
  if (
    batchK !== batch ||
    k.shape[3] !== headDim ||
    v.shape.some((size, axis) => size !== k.shape[axis]) ||
    k.dtype !== 'f32' ||
    v.dtype !== 'f32' ||
    headsKV === 0 ||
    headsQ % headsKV !== 0 ||
    (mask &&
      (mask.dtype === 'f32' || mask.dtype === 'f16' || mask.shape[0] !== batch || mask.shape[1] !== seqK))
  ) {
    // attention() validates and names the bad operand.
    const { output, logsumexp } = attention(q, k, v, options);
    logsumexp.dispose();
    return output;
  }
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const queryOffset = options.queryOffset ?? seqK - seqQ;
  const window = options.window ?? 0;
  const softcap = options.softcap ?? 0;
  const bad = [
    !Number.isFinite(scale) && `scale ${scale} is not finite`,
    !(Number.isInteger(queryOffset) && Math.abs(queryOffset) < 2 ** 31) &&
      `queryOffset ${queryOffset} must be a 32-bit integer`,
    options.window !== undefined &&
      !(Number.isInteger(window) && window >= 1 && window < 2 ** 31) &&
      `window ${window} must be a positive 32-bit integer`,
    options.softcap !== undefined &&
      !(Number.isFinite(softcap) && softcap > 0) &&
      `softcap ${softcap} must be a positive number`,
  ].find(Boolean);
  if (bad) throw new TensorError(`promptAttention(q ${q.describe()}): ${bad}`);
  const output = device.empty(q.shape, 'f32');
  if (output.size === 0) return output;
  const rows = PROMPT_ROWS_PER_LANE;
  const rowBlocks = Math.ceil(seqQ / (lanes * rows));
  const blocks = batch * headsQ * rowBlocks;
  device.dispatch({
    key: [KERNELS.attention, 'prompt', headDim, lanes, chunk, rows].join(':'),
    source: () => promptSource(headDim / 4, lanes, chunk, rows),
    bindings: [q, k, v, mask ?? q, output],
    uniforms: {
      fields: FIELDS,
      values: {
        blocks,
        row_blocks: rowBlocks,
        seq_q: seqQ,
        seq_k: seqK,
        heads_q: headsQ,
        heads_kv: headsKV,
        group: headsQ / headsKV,
        query_offset: queryOffset,
        scale,
        empty_logsumexp: 0,
        causal: (options.causal ?? true) ? 1 : 0,
        masked: mask ? 1 : 0,
        window,
        softcap,
      },
    },
    workgroups: grid(blocks, device.maxWorkgroupsPerDimension),
  });
  return output;
}

/**
 * Query rows per lane of promptAttention's kernel: each broadcast key and value serves all of them.
 * On lavapipe at head dim 8 (alternated in one process, load 13): 1, 2 and 4 rows took 0.43, 0.38
 * and 0.34x the key-lanes kernel's time at 128 positions, 0.58, 0.54 and 0.45x at 512.
 */
const PROMPT_ROWS_PER_LANE = 4;

/**
 * Lanes (query rows) of a promptAttention workgroup, or 0 where the device leaves prompts to
 * attention(): no promptAttentionChunk in its tuning, no `subgroups`, or a subgroup smaller than
 * attentionBlockQ (subgroupBroadcast must reach the whole workgroup).
 */
export function promptAttentionLanes(device: Device): number {
  if (device.tuning.promptAttentionChunk === 0 || !device.gpu.features.has('subgroups')) return 0;
  const lanes = device.tuning.attentionBlockQ;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return (info?.subgroupMinSize ?? 0) >= lanes ? lanes : 0;
}

/**
 * The chunked prompt-attention kernel for head dims of `vectors` vec4s, `rows` query rows per lane
 * (lane l takes rows first + r lanes + l), each chunk's key and value vectors broadcast once for
 * all of them. Loading the chunk's rows in every lane instead (the same address in each) was
 * 4-5x slower than attention()'s kernels on lavapipe, where such a load costs a scalar load per lane.
 */
function promptSource(vectors: number, lanes: number, chunk: number, rows: number): string {
  if (chunk % lanes !== 0)
    throw new TensorError(`promptAttention: a chunk of ${chunk} keys over ${lanes} lanes`);
  const V = vectors;
  const C = chunk;
  const R = rows;
  const groups = C / lanes;
  const perRow = (r: number) => `
    {
${each(C, (t) =>
  [
    `      let visible_${t} = word_${t} != 0u && key_${t} >= row_begin_${r} && key_${t} < row_end_${r};`,
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
  const source = kernelSource({
    storage: [
      { name: 'q', type: 'vec4<f32>', access: 'read' },
      { name: 'k', type: 'vec4<f32>', access: 'read' },
      { name: 'v', type: 'vec4<f32>', access: 'read' },
      { name: 'mask', type: 'u32', access: 'read' },
      { name: 'out', type: 'vec4<f32>', access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: lanes,
    helpers: `
const SKIP: f32 = -1.0e38;
${SOFTCAP_WGSL}
${KEY_RANGE_WGSL}`,
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
${each(R, (r) =>
  [
    `  let i_${r} = min(first + ${r * lanes}u + lane, last);`,
    `  let q_at_${r} = ((b * params.seq_q + i_${r}) * params.heads_q + head) * ${V}u;`,
    each(V, (c) => `  let q_${r}_${c} = q[q_at_${r} + ${c}u] * params.scale;`),
    each(V, (c) => `  var acc_${r}_${c} = vec4<f32>(0.0);`),
    `  let row_end_${r} = key_end_of(i_${r});`,
    `  let row_begin_${r} = window_begin(i_${r});`,
    `  var row_max_${r} = SKIP;`,
    `  var row_sum_${r} = 0.0;`,
  ].join('\n'),
)}
  let walk_begin = window_begin(first);
  let walk_end = key_end_of(last);
  let kv_stride = params.heads_kv * ${V}u;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * ${V}u;
  let mask_base = b * params.seq_k;
  for (var start = walk_begin; start < walk_end; start += ${C}u) {
${chunkKeyValueLoads(groups, V, (g) => [
  `    let lane_key_${g} = start + ${g * lanes}u + lane;`,
  `    let lane_at_${g} = kv_base + min(lane_key_${g}, walk_end - 1u) * kv_stride;`,
  // Keys past the walk (the last chunk's tail) are masked like padding.
  `    var lane_word_${g} = select(0u, 1u, lane_key_${g} < walk_end);`,
  `    if (params.masked != 0u) { lane_word_${g} = select(0u, mask[mask_base + min(lane_key_${g}, walk_end - 1u)], lane_key_${g} < walk_end); }`,
])}
${chunkKeyValueBroadcasts(C, V, lanes)}
${each(R, perRow)}
  }
${each(R, (r) =>
  [
    `  if (first + ${r * lanes}u + lane < params.seq_q) {`,
    `    let out_at = ((b * params.seq_q + first + ${r * lanes}u + lane) * params.heads_q + head) * ${V}u;`,
    '    // A row that sees no key (all padding): zeros, not 0 / 0.',
    `    let inverse = select(0.0, 1.0 / row_sum_${r}, row_sum_${r} > 0.0);`,
    each(V, (c) => `    out[out_at + ${c}u] = acc_${r}_${c} * inverse;`),
    '  }',
  ].join('\n'),
)}`,
  });
  const signature = 'nwg: vec3u) {';
  return `enable subgroups;\n${source.replace(signature, 'nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {')}`;
}
