import { grid } from '../../device/device.js';
import type { Tensor } from '../../tensor/tensor.js';
import { packedStatsSpec } from '../attention/packed-stats.js';
import { KERNELS } from '../names.js';
import { type KernelSourceSpec, kernelSource } from '../shared/wgsl.js';
import {
  attentionTiledHelpers,
  TILE,
  TILED_ATTENTION_FIELDS,
  type TiledAttentionValues,
} from './attention-tiled.js';

export interface TiledAttentionBackwardJob {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** dO, q's shape. */
  grad: Tensor;
  logsumexp: Tensor;
  /**
   * f32 [batch, headsQ, seqQ]: D_i = dO_i . O_i (attentionBackward's first pass); with
   * packedStats, [batch, headsQ, seqQ, 2] holding (L_i, D_i), and logsumexp is not bound.
   */
  delta: Tensor;
  packedStats?: boolean;
  mask: Tensor | null;
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  values: TiledAttentionValues;
}

/**
 * Attention gradients for GPUs in the layout of tiledAttention: with p_ij = exp(s_ij - L_i),
 * ds_ij = p_ij (dO_i . v_j - D_i) (times the soft-cap slope), dq_i = scale sum_j ds_ij k_j,
 * dk_j = scale sum_i ds_ij q_i, dv_j = sum_i p_ij dO_i. Two dispatches. dq: a 16 x 16 workgroup per
 * 16 queries of one head walks the key tiles (value rows staged, then key rows); invocation
 * (r, c) scores query r against key c, and accumulates head-dim vectors c, c + 16, ... of dq_r.
 * dk and dv: a workgroup per 16 keys of one key/value head walks the query tiles of every query
 * head of its group (query rows staged, then dO rows, then the query rows again); invocation
 * (r, c) pairs key r with query c. Scores are rebuilt per tile; nothing of size seqQ x seqK exists.
 */
export function tiledAttentionBackward(job: TiledAttentionBackwardJob): void {
  const { q, k, grad, logsumexp, delta, mask, dq, dk, dv, values } = job;
  const device = q.device;
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const [, seqK, headsKV] = k.shape;
  const dtype = q.dtype;
  const stored = `vec4<${dtype}>` as const;
  const inputs = [
    { name: 'q', type: stored, access: 'read' as const },
    { name: 'k', type: stored, access: 'read' as const },
    { name: 'v', type: stored, access: 'read' as const },
    { name: 'grad', type: stored, access: 'read' as const },
    { name: 'lse', type: 'f32' as const, access: 'read' as const },
    { name: 'delta', type: 'f32' as const, access: 'read' as const },
    { name: 'mask', type: 'u32' as const, access: 'read' as const },
  ];
  const packed = job.packedStats === true;
  const bound = [q, job.k, job.v, grad, ...(packed ? [] : [logsumexp]), delta, mask ?? q];
  const source = (spec: KernelSourceSpec) =>
    kernelSource(packed ? packedStatsSpec(spec, 'lse', 'delta') : spec);
  const suffix = packed ? ':packed' : '';
  const helpers = `${attentionTiledHelpers(headDim / 4)}
var<workgroup> second: array<f32, ${TILE * TILE}>;`;
  const qBlocks = Math.ceil(seqQ / TILE);
  const queryTotal = batch * headsQ * qBlocks;
  device.dispatch({
    key: `${KERNELS.attentionBackward}:tiled:dq:${dtype}:${headDim}${suffix}`,
    source: () =>
      source({
        storage: [...inputs, { name: 'dq', type: stored, access: 'read_write' }],
        uniforms: TILED_ATTENTION_FIELDS,
        workgroupSize: [TILE, TILE, 1],
        helpers,
        body: queryGradBody(stored),
      }),
    bindings: [...bound, dq],
    uniforms: { fields: TILED_ATTENTION_FIELDS, values: { ...values, total: queryTotal, q_blocks: qBlocks } },
    workgroups: grid(queryTotal, device.maxWorkgroupsPerDimension),
  });
  const kBlocks = Math.ceil(seqK / TILE);
  const keyTotal = batch * headsKV * kBlocks;
  device.dispatch({
    key: `${KERNELS.attentionBackward}:tiled:dkv:${dtype}:${headDim}${suffix}`,
    source: () =>
      source({
        storage: [
          ...inputs,
          { name: 'dk', type: stored, access: 'read_write' },
          { name: 'dv', type: stored, access: 'read_write' },
        ],
        uniforms: TILED_ATTENTION_FIELDS,
        workgroupSize: [TILE, TILE, 1],
        helpers,
        body: keyValueGradBody(stored),
      }),
    bindings: [...bound, dk, dv],
    // q_blocks carries the key blocks here.
    uniforms: { fields: TILED_ATTENTION_FIELDS, values: { ...values, total: keyTotal, q_blocks: kBlocks } },
    workgroups: grid(keyTotal, device.maxWorkgroupsPerDimension),
  });
}

/** Stages rows first .. first + T - 1 of `buffer` (clamped to `limit` rows) at `base` + row * `stride`. */
function stage(buffer: string, first: string, limit: string, base: string, stride: string): string {
  return `    workgroupBarrier();
    for (var x = flat; x < T * DV; x += T * T) {
      let row = min(${first} + x / DV, ${limit} - 1u);
      rows[x] = vec4f(${buffer}[${base} + row * ${stride} + x % DV]);
    }
    workgroupBarrier();`;
}

function queryGradBody(stored: string): string {
  return `
  let block = flat_workgroup(wid, nwg);
  if (block >= params.total) { return; }
  let q_block = block % params.q_blocks;
  let batch_head = block / params.q_blocks;
  let head = batch_head % params.heads_q;
  let b = batch_head / params.heads_q;
  let kv_head = head / params.group;
  let r = lid.y;
  let c = lid.x;
  let flat = r * T + c;
  let first = q_block * T;
  let in_range = first + r < params.seq_q;
  let i = min(first + r, params.seq_q - 1u);
  let last = min(first + T, params.seq_q) - 1u;
  let q_at = ((b * params.seq_q + i) * params.heads_q + head) * DV;
  let row_stat = (b * params.heads_q + head) * params.seq_q + i;
  let lse_i = lse[row_stat];
  let delta_i = delta[row_stat];
  let key_end = key_end_of(i);
  let key_begin = window_begin(i);
  let walk_end = key_end_of(last);
  let walk_begin = window_begin(first);
  let kv_stride = params.heads_kv * DV;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * DV;
  var acc: array<vec4f, SLICE>;
  for (var start = walk_begin; start < walk_end; start += T) {
    let count = min(T, walk_end - start);
    let j = start + c;
    let visible = c < count && j >= key_begin && j < key_end && key_visible(b, i, j);
${stage('v', 'start', 'params.seq_k', 'kv_base', 'kv_stride')}
    var dp = 0.0;
    if (visible) {
      for (var d = 0u; d < DV; d++) { dp += dot(vec4f(grad[q_at + d]), rows[c * DV + d]); }
    }
${stage('k', 'start', 'params.seq_k', 'kv_base', 'kv_stride')}
    var ds = 0.0;
    if (visible) {
      var total = 0.0;
      for (var d = 0u; d < DV; d++) { total += dot(vec4f(q[q_at + d]), rows[c * DV + d]); }
      let capped = soft_cap(total * params.scale);
      ds = exp(capped - lse_i) * (dp - delta_i) * soft_cap_slope(capped);
    }
    tile[flat] = ds;
    workgroupBarrier();
    for (var e = 0u; e < SLICE; e++) {
      let d = c + e * T;
      if (d < DV) {
        var sum = acc[e];
        for (var t = 0u; t < count; t++) { sum += tile[r * T + t] * rows[t * DV + d]; }
        acc[e] = sum;
      }
    }
  }
  if (!in_range) { return; }
  for (var e = 0u; e < SLICE; e++) {
    let d = c + e * T;
    if (d < DV) { dq[q_at + d] = ${stored}(acc[e] * params.scale); }
  }`;
}

function keyValueGradBody(stored: string): string {
  return `
  let block = flat_workgroup(wid, nwg);
  if (block >= params.total) { return; }
  let k_block = block % params.q_blocks;
  let batch_head = block / params.q_blocks;
  let kv_head = batch_head % params.heads_kv;
  let b = batch_head / params.heads_kv;
  let r = lid.y;
  let c = lid.x;
  let flat = r * T + c;
  let key_first = k_block * T;
  let in_range = key_first + r < params.seq_k;
  let j = min(key_first + r, params.seq_k - 1u);
  let key_last = min(key_first + T, params.seq_k) - 1u;
  let k_at = ((b * params.seq_k + j) * params.heads_kv + kv_head) * DV;
  // Queries that may see a key of this block: causal, from the position of its first key on;
  // with a sliding window, up to the last query whose window still holds its last key.
  var q_begin = 0u;
  if (params.causal != 0u) {
    q_begin = u32(clamp(i32(key_first) - params.query_offset, 0, i32(params.seq_q)));
  }
  var q_end = params.seq_q;
  if (params.window != 0u) {
    q_end = u32(clamp(i32(key_last) - params.query_offset + i32(params.window), 0, i32(params.seq_q)));
  }
  var acc_k: array<vec4f, SLICE>;
  var acc_v: array<vec4f, SLICE>;
  for (var g = 0u; g < params.group; g++) {
    let head = kv_head * params.group + g;
    let q_base = head * DV;
    let q_stride = params.heads_q * DV;
    let batch_q = b * params.seq_q * q_stride;
    for (var start = q_begin; start < q_end; start += T) {
      let count = min(T, q_end - start);
      let i = min(start + c, params.seq_q - 1u);
      let visible = in_range && c < count && j >= window_begin(i) && j < key_end_of(i) && key_visible(b, i, j);
      let row_stat = (b * params.heads_q + head) * params.seq_q + i;
${stage('q', 'start', 'params.seq_q', 'batch_q + q_base', 'q_stride')}
      var p = 0.0;
      var capped = 0.0;
      if (visible) {
        var total = 0.0;
        for (var d = 0u; d < DV; d++) { total += dot(rows[c * DV + d], vec4f(k[k_at + d])); }
        capped = soft_cap(total * params.scale);
        p = exp(capped - lse[row_stat]);
      }
${stage('grad', 'start', 'params.seq_q', 'batch_q + q_base', 'q_stride')}
      var ds = 0.0;
      if (visible) {
        var dp = 0.0;
        for (var d = 0u; d < DV; d++) { dp += dot(rows[c * DV + d], vec4f(v[k_at + d])); }
        ds = p * (dp - delta[row_stat]) * soft_cap_slope(capped);
      }
      tile[flat] = p;
      second[flat] = ds;
      workgroupBarrier();
      for (var e = 0u; e < SLICE; e++) {
        let d = c + e * T;
        if (d < DV) {
          var sum = acc_v[e];
          for (var t = 0u; t < count; t++) { sum += tile[r * T + t] * rows[t * DV + d]; }
          acc_v[e] = sum;
        }
      }
${stage('q', 'start', 'params.seq_q', 'batch_q + q_base', 'q_stride')}
      for (var e = 0u; e < SLICE; e++) {
        let d = c + e * T;
        if (d < DV) {
          var sum = acc_k[e];
          for (var t = 0u; t < count; t++) { sum += second[r * T + t] * rows[t * DV + d]; }
          acc_k[e] = sum;
        }
      }
    }
  }
  if (!in_range) { return; }
  for (var e = 0u; e < SLICE; e++) {
    let d = c + e * T;
    if (d < DV) {
      dk[k_at + d] = ${stored}(acc_k[e] * params.scale);
      dv[k_at + d] = ${stored}(acc_v[e]);
    }
  }`;
}
