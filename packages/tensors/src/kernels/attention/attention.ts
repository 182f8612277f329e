import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import {
  attentionCapabilities,
  tiledAttention,
  useTiledAttention,
} from '../attention-tiled/attention-tiled.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';
import { ATTENTION_PARAM_FIELDS, KEY_MASK_WGSL, SOFTCAP_WGSL } from './attention-wgsl.js';
import { keyLanesAttention, keyLanesWidth } from './key-lanes.js';
import { rowLanesAttention, rowLanesWidth } from './row-lanes.js';

export interface AttentionOptions {
  /** Query i may see key j only when j <= queryOffset + i. Default true. */
  causal?: boolean;
  /** Multiplies q . k. Default 1 / sqrt(headDim). */
  scale?: number;
  /** u32 or i32 [batch, seqK]: 1 = attend, 0 = padded key (segment ids when `segments`). */
  paddingMask?: Tensor;
  /**
   * paddingMask holds segment ids (packed sequences, LLaMA-Factory's neat_packing): the query at
   * position p = queryOffset + i sees key j only when mask[j] is nonzero and equals mask[p], so
   * packed examples never attend to each other; 0 marks padding. Needs 0 <= queryOffset and
   * queryOffset + seqQ <= seqK.
   */
  segments?: boolean;
  /**
   * Position of query 0 among the keys (query i sits at queryOffset + i), for causal masking.
   * Default seqK - seqQ: the last query lines up with the last key, as when decoding with a KV
   * cache that holds exactly the keys so far (0 when seqQ = seqK, as in training).
   */
  queryOffset?: number;
  /**
   * Sliding window (Mistral's sliding_window): query i, at position p = queryOffset + i, sees
   * only keys j with p - window < j, so with causal masking the window keys p - window + 1 .. p,
   * itself included, as Hugging Face's Mistral masks them (key j is hidden when
   * j <= p - sliding_window). Key tiles entirely before a query's window are never visited.
   * A positive integer; default none (every earlier key).
   */
  window?: number;
  /**
   * Logit soft-capping (Gemma 2's attn_logit_softcapping): each score s = scale q . k becomes
   * cap * tanh(s / cap) before the mask and softmax. A positive number; default none.
   */
  softcap?: number;
}

export interface AttentionResult {
  /** [batch, seqQ, headsQ, headDim], q's dtype. */
  output: Tensor;
  /**
   * f32 [batch, headsQ, seqQ]: log sum_j exp(scale q . k_j) over the keys the query sees, the
   * statistic a backward pass uses to rebuild the probabilities. +Infinity for a query that sees
   * no key (its output is zeros), so that exp(score - logsumexp) is 0 there too.
   */
  logsumexp: Tensor;
}

const FIELDS = [
  { name: 'total', type: 'u32' as const },
  { name: 'q_blocks', type: 'u32' as const },
  { name: 'vectors', type: 'u32' as const },
  ...ATTENTION_PARAM_FIELDS,
];

/**
 * Fused scaled-dot-product attention, softmax(scale q k^T + mask) v, on q [batch, seqQ, headsQ,
 * headDim] and k, v [batch, seqK, headsKV, headDim] with grouped-query heads: headsQ is a
 * multiple of headsKV and query head h reads kv head floor(h / (headsQ / headsKV)) (HF repeat_kv).
 * f32 or f16 (computed in f32).
 *
 * Flash-attention style: one invocation per query row, device.tuning.attentionBlockQ rows per
 * workgroup (so the rows of a workgroup read the same key and value rows), keys visited in tiles
 * of attentionBlockK with an online softmax (running max and sum, rescaled per tile). No
 * seq x seq matrix is ever stored. Causal tiles past a query's last visible key, and with a sliding
 * window the tiles before its first, are skipped.
 * Loops over the head dim are unrolled up to device.tuning.attentionUnrollHeadDim; unrolled, and
 * where device.tuning.attentionSubgroups allows, the key and value rows every lane reads are loaded
 * a few vectors per lane and shared with subgroupBroadcast (see sharedBody). Causal and the
 * mask are uniforms, so one pipeline serves every option for a (dtype, headDim).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): AttentionResult {
  for (const t of [q, k, v]) t.assertLive();
  const mask = options.paddingMask;
  mask?.assertLive();
  const describe = () =>
    `attention(q ${q.dtype}${formatShape(q.shape)}, k ${k.dtype}${formatShape(k.shape)}, v ${v.dtype}${formatShape(v.shape)}` +
    (mask ? `, paddingMask ${mask.dtype}${formatShape(mask.shape)})` : ')');
  if (q.rank !== 4 || k.rank !== 4) {
    throw new TensorError(`${describe()}: q, k and v must be [batch, seq, heads, headDim]`);
  }
  if (!sameShape(k.shape, v.shape)) throw new TensorError(`${describe()}: k and v shapes differ`);
  if ((q.dtype !== 'f32' && q.dtype !== 'f16') || k.dtype !== q.dtype || v.dtype !== q.dtype) {
    throw new TensorError(`${describe()}: q, k and v must share one float dtype (f32 or f16)`);
  }
  if (k.device !== q.device || v.device !== q.device || (mask && mask.device !== q.device)) {
    throw new TensorError(`${describe()}: tensors live on different devices`);
  }
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const [batchK, seqK, headsKV, headDimK] = k.shape;
  if (batchK !== batch) throw new TensorError(`${describe()}: q and k have different batch sizes`);
  if (headDimK !== headDim) throw new TensorError(`${describe()}: q and k have different head dims`);
  if (headsKV === 0 || headsQ % headsKV !== 0) {
    throw new TensorError(
      `${describe()}: query heads (${headsQ}) must be a multiple of key/value heads (${headsKV})`,
    );
  }
  if (mask) {
    if (mask.dtype !== 'u32' && mask.dtype !== 'i32')
      throw new TensorError(`${describe()}: paddingMask must be u32 or i32`);
    if (!sameShape(mask.shape, [batch, seqK])) {
      throw new TensorError(
        `${describe()}: paddingMask must be [batch, seqK] = ${formatShape([batch, seqK])}`,
      );
    }
  }
  const causal = options.causal ?? true;
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const queryOffset = options.queryOffset ?? seqK - seqQ;
  if (!Number.isFinite(scale)) throw new TensorError(`${describe()}: scale ${scale} is not finite`);
  if (!Number.isInteger(queryOffset) || Math.abs(queryOffset) >= 2 ** 31) {
    throw new TensorError(`${describe()}: queryOffset ${queryOffset} must be a 32-bit integer`);
  }
  checkSegments(options.segments, mask, queryOffset, seqQ, seqK, describe);
  const window = options.window;
  if (window !== undefined && !(Number.isInteger(window) && window >= 1 && window < 2 ** 31)) {
    throw new TensorError(`${describe()}: window ${window} must be a positive 32-bit integer`);
  }

  const softcap = options.softcap;
  if (softcap !== undefined && !(Number.isFinite(softcap) && softcap > 0)) {
    throw new TensorError(`${describe()}: softcap ${softcap} must be a positive number`);
  }

  const device = q.device;
  const output = device.empty(q.shape, q.dtype);
  const logsumexp = device.empty([batch, headsQ, seqQ], 'f32');
  if (output.size === 0) return { output, logsumexp };

  // The uniforms every attention kernel reads (each adds its own block counts).
  const common = {
    seq_q: seqQ,
    seq_k: seqK,
    heads_q: headsQ,
    heads_kv: headsKV,
    group: headsQ / headsKV,
    query_offset: queryOffset,
    scale,
    empty_logsumexp: Number.POSITIVE_INFINITY,
    causal: causal ? 1 : 0,
    masked: mask ? (options.segments ? 2 : 1) : 0,
    window: window ?? 0,
    softcap: softcap ?? 0,
  };
  if (useTiledAttention(attentionCapabilities(device), headDim)) {
    // GPUs: the work of a query block spread over a 16 x 16 workgroup (kernels/attention-tiled/).
    tiledAttention({
      q,
      k,
      v,
      mask: mask ?? null,
      output,
      logsumexp,
      values: common,
    });
    return { output, logsumexp };
  }
  const rowLanes = rowLanesWidth(device, headDim, q.dtype);
  if (rowLanes > 0) {
    // Small head dims in f32 on CPU rasterisers: lanes own query rows, keys broadcast (row-lanes.ts).
    rowLanesAttention({ q, k, v, mask: mask ?? null, output, logsumexp, lanes: rowLanes, values: common });
    return { output, logsumexp };
  }
  const lanes = keyLanesWidth(device, headDim);
  if (lanes > 0) {
    // Small head dims on CPU rasterisers: lanes split the keys, rows kept per lane (key-lanes.ts).
    keyLanesAttention({
      q,
      k,
      v,
      mask: mask ?? null,
      output,
      logsumexp,
      lanes,
      values: common,
    });
    return { output, logsumexp };
  }
  const blockQ = device.tuning.attentionBlockQ;
  const blockK = device.tuning.attentionBlockK;
  const width = headDim % 4 === 0 ? 4 : 1;
  const vectors = headDim / width;
  const dtype = q.dtype;
  const stored = width === 4 ? (`vec4<${dtype}>` as const) : dtype;
  const compute = width === 4 ? 'vec4<f32>' : 'f32';
  const qBlocks = Math.ceil(seqQ / blockQ);
  const total = batch * headsQ * qBlocks;
  if (total >= 2 ** 32) throw new TensorError(`${describe()}: too many query rows`);
  const unroll = headDim <= device.tuning.attentionUnrollHeadDim;
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  const shared =
    unroll &&
    device.tuning.attentionSubgroups &&
    device.gpu.features.has('subgroups') &&
    (info?.subgroupMinSize ?? 0) >= blockQ;
  const key = [
    KERNELS.attention,
    dtype,
    headDim,
    blockQ,
    blockK,
    shared ? 'shared' : unroll ? 'unrolled' : 'looped',
  ].join(':');
  const spec = () => ({
    storage: [
      { name: 'q', type: stored, access: 'read' as const },
      { name: 'k', type: stored, access: 'read' as const },
      { name: 'v', type: stored, access: 'read' as const },
      { name: 'mask', type: 'u32' as const, access: 'read' as const },
      { name: 'out', type: stored, access: 'read_write' as const },
      { name: 'lse', type: 'f32' as const, access: 'read_write' as const },
    ],
    uniforms: FIELDS,
    workgroupSize: blockQ,
    helpers: attentionHelpers(blockK, vectors, compute),
  });
  device.dispatch({
    key,
    source: () =>
      shared
        ? withSubgroupLane(
            kernelSource({ ...spec(), body: sharedBody({ compute, stored, vectors, blockQ }) }),
          )
        : kernelSource({ ...spec(), body: attentionBody({ compute, stored, unroll }) }),
    // Without a mask, q stands in for the binding; params.masked = 0 keeps it unread.
    bindings: [q, k, v, mask ?? q, output, logsumexp],
    uniforms: {
      fields: FIELDS,
      values: { ...common, total, q_blocks: qBlocks, vectors },
    },
    workgroups: grid(total, device.maxWorkgroupsPerDimension),
  });
  return { output, logsumexp };
}

function attentionHelpers(blockK: number, vectors: number, compute: string): string {
  const dot = compute === 'f32' ? 'a * b' : 'dot(a, b)';
  return `
const BK: u32 = ${blockK}u;
const DV: u32 = ${vectors}u;
// Score of a masked key: exp(SKIP - max) underflows to 0 without infinities.
const SKIP: f32 = -1.0e38;
fn dot_w(a: ${compute}, b: ${compute}) -> f32 { return ${dot}; }
${SOFTCAP_WGSL}
${KEY_MASK_WGSL}`;
}

/** Writes a query row's output (acc / sum) and its log-sum-exp; a row that saw no key gets zeros. */
function storeRow(stored: string, vectors: string): string {
  return `  let lse_at = (b * params.heads_q + head) * params.seq_q + i;
  if (seen) {
    let inverse = 1.0 / running_sum;
    for (var c = 0u; c < ${vectors}; c++) { out[q_at + c] = ${stored}(acc[c] * inverse); }
    lse[lse_at] = running_max + log(running_sum);
  } else {
    // No visible key: zeros, not NaN.
    for (var c = 0u; c < ${vectors}; c++) { out[q_at + c] = ${stored}(); }
    lse[lse_at] = params.empty_logsumexp;
  }`;
}

/** The online softmax's state of one query row, and where its head's keys and values start. */
const ONLINE_SOFTMAX_STATE = `  let kv_stride = params.heads_kv * DV;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * DV;
  var running_max = 0.0;
  var running_sum = 0.0;
  var seen = false;
  var scores: array<f32, BK>;`;

function attentionBody(spec: { compute: string; stored: string; unroll: boolean }): string {
  const { compute, stored, unroll } = spec;
  return `
  // A constant bound lets the compiler unroll the loops over the head dim; a uniform one does not.
  let head_vectors = ${unroll ? 'DV' : 'params.vectors'};
  let block = flat_workgroup(wid, nwg);
  if (block >= params.total) { return; }
  let q_block = block % params.q_blocks;
  let batch_head = block / params.q_blocks;
  let head = batch_head % params.heads_q;
  let b = batch_head / params.heads_q;
  let kv_head = head / params.group;
  let i = q_block * WG + lid.x;
  if (i >= params.seq_q) { return; }
  let q_at = ((b * params.seq_q + i) * params.heads_q + head) * DV;
  var query: array<${compute}, DV>;
  var acc: array<${compute}, DV>;
  for (var c = 0u; c < head_vectors; c++) { query[c] = ${compute}(q[q_at + c]) * params.scale; }
  // Causal: keys after the query's position are never visited.
  let key_end = key_end_of(i);
  // Sliding window: keys before it are never visited either.
  let key_begin = window_begin(i);
${ONLINE_SOFTMAX_STATE}
  for (var start = key_begin; start < key_end; start += BK) {
    let count = min(BK, key_end - start);
    var block_max = SKIP;
    for (var t = 0u; t < count; t++) {
      let j = start + t;
      var score = SKIP;
      if (key_visible(b, i, j)) {
        let k_at = kv_base + j * kv_stride;
        var total = 0.0;
        for (var c = 0u; c < head_vectors; c++) { total += dot_w(query[c], ${compute}(k[k_at + c])); }
        score = soft_cap(total);
      }
      scores[t] = score;
      block_max = max(block_max, score);
    }
    // Every key of this tile is masked for this query.
    if (block_max == SKIP) { continue; }
    let new_max = select(block_max, max(running_max, block_max), seen);
    let correction = select(0.0, exp(running_max - new_max), seen);
    running_sum *= correction;
    for (var c = 0u; c < head_vectors; c++) { acc[c] *= correction; }
    for (var t = 0u; t < count; t++) {
      if (scores[t] == SKIP) { continue; }
      let p = exp(scores[t] - new_max);
      running_sum += p;
      let v_at = kv_base + (start + t) * kv_stride;
      for (var c = 0u; c < head_vectors; c++) { acc[c] += p * ${compute}(v[v_at + c]); }
    }
    running_max = new_max;
    seen = true;
  }
${storeRow(stored, 'head_vectors')}`;
}

/** Adds the subgroups extension and the `lane` builtin (subgroup_invocation_id) to kernelSource() output. */
function withSubgroupLane(source: string): string {
  const signature = 'nwg: vec3u) {';
  if (!source.includes(signature))
    throw new TensorError('attention: kernelSource() main signature not found');
  return `enable subgroups;\n${source.replace(signature, 'nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {')}`;
}

/**
 * The attention body for a workgroup that is one subgroup: the same online softmax as
 * attentionBody, with control flow uniform over the workgroup so that subgroupBroadcast may run
 * in it. Every lane walks the keys up to the last query's causal end; keys past its own end or
 * padded score SKIP (select, not branch), a tile with no visible key leaves the state unchanged,
 * and rows past seqQ are computed on a clamped query and not stored. Lane l loads vectors l,
 * l + WG, ... of each key and value row, and subgroupBroadcast hands them to the other lanes: on
 * lavapipe every lane's own load of a row the whole workgroup reads costs a scalar load per lane.
 */
function sharedBody(spec: { compute: string; stored: string; vectors: number; blockQ: number }): string {
  const { compute, stored, vectors, blockQ } = spec;
  const pieces = Math.ceil(vectors / blockQ);
  const loadRow = (row: string, buffer: string, at: string, indent: string) => {
    const lines: string[] = [];
    for (let p = 0; p < pieces; p++) {
      lines.push(
        `let ${row}_piece_${p} = ${compute}(${buffer}[${at} + min(${p * blockQ}u + lane, DV - 1u)]);`,
      );
    }
    lines.push(`var ${row}: array<${compute}, DV>;`);
    for (let c = 0; c < vectors; c++) {
      lines.push(`${row}[${c}] = subgroupBroadcast(${row}_piece_${Math.floor(c / blockQ)}, ${c % blockQ}u);`);
    }
    return lines.map((line) => indent + line).join('\n');
  };
  return `
  let block = flat_workgroup(wid, nwg);
  if (block >= params.total) { return; }
  let q_block = block % params.q_blocks;
  let batch_head = block / params.q_blocks;
  let head = batch_head % params.heads_q;
  let b = batch_head / params.heads_q;
  let kv_head = head / params.group;
  let first = q_block * WG;
  let in_range = first + lid.x < params.seq_q;
  let i = min(first + lid.x, params.seq_q - 1u);
  let last = min(first + WG, params.seq_q) - 1u;
  let q_at = ((b * params.seq_q + i) * params.heads_q + head) * DV;
  var query: array<${compute}, DV>;
  var acc: array<${compute}, DV>;
  for (var c = 0u; c < DV; c++) { query[c] = ${compute}(q[q_at + c]) * params.scale; }
  // This lane's causal end, and the workgroup's (that of its last query, the largest).
  let key_end = key_end_of(i);
  let walk_end = key_end_of(last);
  // This lane's first key under the sliding window, and the workgroup's (its first query's).
  let key_begin = window_begin(i);
  let walk_begin = window_begin(first);
${ONLINE_SOFTMAX_STATE}
  for (var start = walk_begin; start < walk_end; start += BK) {
    let count = min(BK, walk_end - start);
    var block_max = SKIP;
    for (var t = 0u; t < count; t++) {
      let j = start + t;
      let k_at = kv_base + j * kv_stride;
${loadRow('key_row', 'k', 'k_at', '      ')}
      var total = 0.0;
      for (var c = 0u; c < DV; c++) { total += dot_w(query[c], key_row[c]); }
      let visible = j < key_end && j >= key_begin && key_visible(b, i, j);
      let score = select(SKIP, soft_cap(total), visible);
      scores[t] = score;
      block_max = max(block_max, score);
    }
    // A tile with no visible key for this query changes nothing (correction 1, p = 0).
    let live = block_max != SKIP;
    let new_max = select(running_max, select(block_max, max(running_max, block_max), seen), live);
    let correction = select(1.0, select(0.0, exp(running_max - new_max), seen), live);
    running_sum *= correction;
    for (var c = 0u; c < DV; c++) { acc[c] *= correction; }
    for (var t = 0u; t < count; t++) {
      let v_at = kv_base + (start + t) * kv_stride;
${loadRow('value_row', 'v', 'v_at', '      ')}
      let p = select(0.0, exp(scores[t] - new_max), scores[t] != SKIP);
      running_sum += p;
      for (var c = 0u; c < DV; c++) { acc[c] += p * value_row[c]; }
    }
    running_max = new_max;
    seen = seen || live;
  }
  if (!in_range) { return; }
${storeRow(stored, 'DV')}`;
}

/** Segment ids need a mask to hold them and every query's position among the keys. */
export function checkSegments(
  segments: boolean | undefined,
  mask: Tensor | null | undefined,
  queryOffset: number,
  seqQ: number,
  seqK: number,
  describe: () => string,
): void {
  if (!segments) return;
  if (!mask) throw new TensorError(`${describe()}: segments needs paddingMask to hold the segment ids`);
  if (queryOffset < 0 || queryOffset + seqQ > seqK) {
    throw new TensorError(
      `${describe()}: with segments every query must sit among the keys (queryOffset ${queryOffset}, ${seqQ} queries, ${seqK} keys)`,
    );
  }
}
