import { type Device, grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';
import { type AttentionOptions, attention } from './attention.js';
import { ATTENTION_PARAM_FIELDS, KEY_RANGE_WGSL, SOFTCAP_WGSL } from './attention-wgsl.js';

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
 * `promptAttentionChunk` (CPU rasterisers) and q is f32 with a head dim that is a multiple of 4,
 * it runs the chunked kernel below; otherwise it is attention() itself.
 *
 * The chunked kernel: a workgroup is `lanes` consecutive query rows of one head (a lane per row),
 * walking the keys up to its last row's causal end in chunks of CHUNK keys whose loops are written
 * out in the source. Every lane reads the same key and value rows at the same time (loads whose
 * address is the same for every lane), so a chunk's q.k products, its one rescaling exp per row and
 * its p.v sums run as straight-line SIMD code on the rows' registers, with no private arrays,
 * barriers or cross-lane operations.
 */
export function promptAttention(q: Tensor, k: Tensor, v: Tensor, options: PromptAttentionOptions = {}): Tensor {
  const device = q.device;
  const chunk = device.tuning.promptAttentionChunk;
  const lanes = promptAttentionLanes(device);
  const [batch, seqQ, headsQ, headDim] = q.shape;
  if (lanes === 0 ||
    headDim > device.tuning.promptAttentionHeadDim || q.rank !== 4 || q.dtype !== 'f32' || headDim % 4 !== 0 || k.rank !== 4) {
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
    (mask && (mask.dtype === 'f32' || mask.dtype === 'f16' || mask.shape[0] !== batch || mask.shape[1] !== seqK))
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
  if (
    !Number.isFinite(scale) ||
    !Number.isInteger(queryOffset) ||
    !(Number.isInteger(window) && window >= 0) ||
    !(Number.isFinite(softcap) && softcap >= 0)
  ) {
    throw new TensorError(
      `promptAttention: scale ${scale}, queryOffset ${queryOffset}, window ${window}, softcap ${softcap}`,
    );
  }
  const output = device.empty(q.shape, 'f32');
  if (output.size === 0) return output;
  const rowBlocks = Math.ceil(seqQ / lanes);
  const blocks = batch * headsQ * rowBlocks;
  device.dispatch({
    key: [KERNELS.attention, 'prompt', headDim, lanes, chunk, LOADS].join(':'),
    source: () => promptSource(headDim / 4, lanes, chunk),
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

const LOADS: 'uniform' | 'broadcast' = (globalThis as { PROMPT_LOADS?: 'uniform' | 'broadcast' }).PROMPT_LOADS ?? 'broadcast';

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

const each = (count: number, line: (index: number) => string, join = '\n') =>
  Array.from({ length: count }, (_, index) => line(index)).join(join);

/**
 * The chunked prompt-attention kernel for head dims of `vectors` vec4s. LOADS 'uniform' (every lane
 * loading the chunk's rows itself, the same address in every lane) was 4-5x slower than
 * attention()'s kernels on lavapipe, where such a load costs a scalar load per lane.
 */
function promptSource(vectors: number, lanes: number, chunk: number): string {
  if (chunk % lanes !== 0) throw new TensorError(`promptAttention: a chunk of ${chunk} keys over ${lanes} lanes`);
  const V = vectors;
  const C = chunk;
  const broadcast = LOADS === 'broadcast';
  // Broadcast: lane l loads keys start + g lanes + l (g < chunk / lanes) and hands them round.
  const load = (buffer: string, t: number, c: number) =>
    broadcast
      ? `subgroupBroadcast(${buffer}_lane_${Math.floor(t / lanes)}_${c}, ${t % lanes}u)`
      : `${buffer}[at_${t} + ${c}u]`;
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
  let first = row_block * WG;
  let last = min(first + WG, params.seq_q) - 1u;
  let i = min(first + lid.x, last);
  let q_at = ((b * params.seq_q + i) * params.heads_q + head) * ${V}u;
${each(V, (c) => `  let q_${c} = q[q_at + ${c}u] * params.scale;`)}
${each(V, (c) => `  var acc_${c} = vec4<f32>(0.0);`)}
  let row_end = key_end_of(i);
  let row_begin = window_begin(i);
  let walk_begin = window_begin(first);
  let walk_end = key_end_of(last);
  let kv_stride = params.heads_kv * ${V}u;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * ${V}u;
  let mask_base = b * params.seq_k;
  var row_max = SKIP;
  var row_sum = 0.0;
  for (var start = walk_begin; start < walk_end; start += ${C}u) {
${
  broadcast
    ? each(
        C / lanes,
        (g) => `    let lane_at_${g} = kv_base + min(start + ${g * lanes}u + lane, walk_end - 1u) * kv_stride;
${each(V, (c) => `    let k_lane_${g}_${c} = k[lane_at_${g} + ${c}u];\n    let v_lane_${g}_${c} = v[lane_at_${g} + ${c}u];`)}`,
      )
    : ''
}
${each(C, (t) =>
  [
    `    let j_${t} = min(start + ${t}u, walk_end - 1u);`,
    `    let at_${t} = kv_base + j_${t} * kv_stride;`,
    `    var word_${t} = 1u;`,
    `    if (params.masked != 0u) { word_${t} = mask[mask_base + j_${t}]; }`,
    `    let visible_${t} = start + ${t}u < walk_end && j_${t} >= row_begin && j_${t} < row_end && word_${t} != 0u;`,
    `    let score_${t} = select(SKIP, soft_cap(${each(V, (c) => `dot(q_${c}, ${load('k', t, c)})`, ' + ')}), visible_${t});`,
  ].join('\n'),
)}
    let new_max = max(row_max, ${each(C - 1, (t) => `max(score_${t}, `, '')}score_${C - 1}${')'.repeat(C - 1)});
    let correction = exp(row_max - new_max);
${each(C, (t) => `    let p_${t} = select(0.0, exp(score_${t} - new_max), visible_${t});`)}
    row_sum = row_sum * correction + ${each(C, (t) => `p_${t}`, ' + ')};
${each(V, (c) => `    acc_${c} = acc_${c} * correction + ${each(C, (t) => `p_${t} * ${load('v', t, c)}`, ' + ')};`)}
    row_max = new_max;
  }
  if (first + lid.x >= params.seq_q) { return; }
  let out_at = ((b * params.seq_q + first + lid.x) * params.heads_q + head) * ${V}u;
  // A row that sees no key (all padding): zeros, not 0 / 0.
  let inverse = select(0.0, 1.0 / row_sum, row_sum > 0.0);
${each(V, (c) => `  out[out_at + ${c}u] = acc_${c} * inverse;`)}`,
  });
  if (!broadcast) return source;
  const signature = 'nwg: vec3u) {';
  return `enable subgroups;\n${source.replace(signature, 'nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {')}`;
}
