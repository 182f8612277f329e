import type { Tuning } from '../../device/adapter-class.js';
import { grid } from '../../device/device.js';
import type { Device, Tensor } from '../../tensor/tensor.js';
import { ATTENTION_PARAM_FIELDS, KEY_MASK_WGSL, SOFTCAP_WGSL } from '../attention/attention-wgsl.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';

/** Query rows and keys per tile of the workgroup-tiled attention forward (a 16 x 16 workgroup). */
export const TILE = 16;

/** What the attention forward's selection looks at (never the vendor). */
export interface AttentionCapabilities {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  tuning: Pick<Tuning, 'attentionKernel'>;
}

export function attentionCapabilities(device: Device): AttentionCapabilities {
  return {
    maxComputeWorkgroupStorageSize: device.gpu.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: device.gpu.limits.maxComputeInvocationsPerWorkgroup,
    tuning: device.tuning,
  };
}

/**
 * Workgroup memory of the tiled kernels: a 16-row tile of key, value, query or dO rows and two
 * 16 x 16 tiles (scores, or p and ds in the key/value gradient).
 */
export function tiledAttentionBytes(headDim: number): number {
  return TILE * headDim * 4 + 2 * TILE * TILE * 4;
}

/**
 * Whether attention's forward takes the workgroup-tiled kernel: the adapter class prefers it
 * (`attentionKernel: 'workgroup'`, GPUs), the head dim is a multiple of 4, and the adapter allows
 * 256 invocations and the workgroup memory of one key tile (tiledAttentionBytes).
 */
export function useTiledAttention(caps: AttentionCapabilities, headDim: number): boolean {
  return (
    caps.tuning.attentionKernel === 'workgroup' &&
    headDim % 4 === 0 &&
    caps.maxComputeInvocationsPerWorkgroup >= TILE * TILE &&
    caps.maxComputeWorkgroupStorageSize >= tiledAttentionBytes(headDim)
  );
}

export const TILED_ATTENTION_FIELDS = [
  { name: 'total', type: 'u32' as const },
  { name: 'q_blocks', type: 'u32' as const },
  ...ATTENTION_PARAM_FIELDS,
];

export interface TiledAttentionJob {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  mask: Tensor | null;
  output: Tensor;
  logsumexp: Tensor;
  values: TiledAttentionValues;
}

/** The launch parameters both passes share (total and q_blocks are set per dispatch). */
export type TiledAttentionValues = Omit<
  Record<(typeof TILED_ATTENTION_FIELDS)[number]['name'], number>,
  'total' | 'q_blocks'
>;

/**
 * Attention forward for GPUs, flash-attention style, with the work of a 16-query block spread
 * over a 16 x 16 workgroup instead of one invocation per query: per 16-key tile the key rows are
 * staged in workgroup memory, invocation (row r, column c) scores query r against key c, every
 * row's online-softmax state (running max and sum) is updated from the 16 x 16 score tile, the
 * value rows replace the key rows, and invocation (r, c) accumulates head-dim vectors c, c + 16, ...
 * of row r. Private state is a few vec4s per invocation whatever the head dim (the per-query
 * kernel keeps two head-dim rows and a score tile per invocation, which GPUs spill at head dim
 * 128). Same masks, windows, soft-capping, GQA and outputs (output, log-sum-exp) as attention(),
 * so attentionBackward() takes its results unchanged.
 */
export function tiledAttention(job: TiledAttentionJob): void {
  const { q, k, v, mask, output, logsumexp, values } = job;
  const device = q.device;
  const [batch, seqQ, headsQ, headDim] = q.shape;
  const dtype = q.dtype;
  const vectors = headDim / 4;
  const qBlocks = Math.ceil(seqQ / TILE);
  const total = batch * headsQ * qBlocks;
  const stored = `vec4<${dtype}>` as const;
  device.dispatch({
    key: `${KERNELS.attention}:tiled:${dtype}:${headDim}:workgroup`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'q', type: stored, access: 'read' },
          { name: 'k', type: stored, access: 'read' },
          { name: 'v', type: stored, access: 'read' },
          { name: 'mask', type: 'u32', access: 'read' },
          { name: 'out', type: stored, access: 'read_write' },
          { name: 'lse', type: 'f32', access: 'read_write' },
        ],
        uniforms: TILED_ATTENTION_FIELDS,
        workgroupSize: [TILE, TILE, 1],
        helpers: attentionTiledHelpers(vectors),
        body: body(stored),
      }),
    bindings: [q, k, v, mask ?? q, output, logsumexp],
    uniforms: { fields: TILED_ATTENTION_FIELDS, values: { ...values, total, q_blocks: qBlocks } },
    workgroups: grid(total, device.maxWorkgroupsPerDimension),
  });
}

/** Constants, workgroup tiles and mask helpers shared by the tiled forward and backward. */
export function attentionTiledHelpers(vectors: number): string {
  return `
const T: u32 = ${TILE}u;
const DV: u32 = ${vectors}u;
// Head-dim vectors each invocation accumulates: c, c + T, ...
const SLICE: u32 = ${Math.ceil(vectors / TILE)}u;
// Score of a hidden key: exp(SKIP - max) underflows to 0 without infinities.
const SKIP: f32 = -1.0e38;
var<workgroup> rows: array<vec4f, ${TILE * vectors}>;
var<workgroup> tile: array<f32, ${TILE * TILE}>;
${SOFTCAP_WGSL}
${KEY_MASK_WGSL}`;
}

function body(stored: string): string {
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
  // This row's keys, and the span the workgroup walks (the union over its rows).
  let key_end = key_end_of(i);
  let key_begin = window_begin(i);
  let walk_end = key_end_of(last);
  let walk_begin = window_begin(first);
  let kv_stride = params.heads_kv * DV;
  let kv_base = (b * params.seq_k * params.heads_kv + kv_head) * DV;
  var acc: array<vec4f, SLICE>;
  var running_max = 0.0;
  var running_sum = 0.0;
  var seen = false;
  for (var start = walk_begin; start < walk_end; start += T) {
    let count = min(T, walk_end - start);
    // Stage key rows start .. start + T - 1 (rows past the end clamped; their scores are hidden).
    workgroupBarrier();
    for (var x = flat; x < T * DV; x += T * T) {
      let j = min(start + x / DV, params.seq_k - 1u);
      rows[x] = vec4f(k[kv_base + j * kv_stride + x % DV]);
    }
    workgroupBarrier();
    let j = start + c;
    var score = SKIP;
    if (c < count && j >= key_begin && j < key_end && key_visible(b, i, j)) {
      var total = 0.0;
      for (var d = 0u; d < DV; d++) { total += dot(vec4f(q[q_at + d]), rows[c * DV + d]); }
      score = soft_cap(total * params.scale);
    }
    tile[flat] = score;
    workgroupBarrier();
    var block_max = SKIP;
    for (var t = 0u; t < T; t++) { block_max = max(block_max, tile[r * T + t]); }
    // A tile with no visible key for this row changes nothing (correction 1, p = 0).
    let live = block_max != SKIP;
    let new_max = select(running_max, select(block_max, max(running_max, block_max), seen), live);
    let correction = select(1.0, select(0.0, exp(running_max - new_max), seen), live);
    workgroupBarrier();
    tile[flat] = select(0.0, exp(score - new_max), score != SKIP);
    // Value rows replace the key rows (every score is computed: the barrier above).
    for (var x = flat; x < T * DV; x += T * T) {
      let jv = min(start + x / DV, params.seq_k - 1u);
      rows[x] = vec4f(v[kv_base + jv * kv_stride + x % DV]);
    }
    workgroupBarrier();
    var block_sum = 0.0;
    for (var t = 0u; t < T; t++) { block_sum += tile[r * T + t]; }
    running_sum = running_sum * correction + block_sum;
    for (var e = 0u; e < SLICE; e++) {
      let d = c + e * T;
      if (d < DV) {
        var sum = acc[e] * correction;
        for (var t = 0u; t < count; t++) { sum += tile[r * T + t] * rows[t * DV + d]; }
        acc[e] = sum;
      }
    }
    running_max = new_max;
    seen = seen || live;
  }
  if (!in_range) { return; }
  let inverse = select(0.0, 1.0 / running_sum, seen);
  for (var e = 0u; e < SLICE; e++) {
    let d = c + e * T;
    if (d < DV) { out[q_at + d] = ${stored}(acc[e] * inverse); }
  }
  if (c == 0u) {
    let lse_at = (b * params.heads_q + head) * params.seq_q + i;
    lse[lse_at] = select(params.empty_logsumexp, running_max + log(running_sum), seen);
  }`;
}
