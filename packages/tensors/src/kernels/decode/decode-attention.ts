import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { jointBindingSpec, jointTensor, storageBuffersPerStage } from '../shared/joint-binding.js';
import { type KernelSourceSpec, kernelSource } from '../shared/wgsl.js';

export interface DecodeAttentionOptions {
  /** [rows, (heads + 2 kvHeads) headDim] f32: this step's q, k and v side by side (decodeMatvec 'store'). */
  qkv: Tensor;
  /** Rotary tables [positions, headDim / 2] f32 (rotate-half layout), indexed by position. */
  cos: Tensor;
  sin: Tensor;
  /** [rows] u32: left padding of each row; its keys before it are skipped, its position is slot - padding. */
  padding: Tensor;
  /** Caches [rows, capacity, kvHeads, headDim] f32; this step's key and value are written at `slot`. */
  keys: Tensor;
  values: Tensor;
  /** Per-head RMSNorm of q and k (Qwen3) before the rotation: weights [headDim] and eps. */
  qkNorm?: { q: Tensor; k: Tensor; eps: number } | null;
  /** [rows, heads headDim] f32: the attention output. */
  out: Tensor;
  heads: number;
  kvHeads: number;
  /** Cache slot of this step's token (the number of positions filled before it). */
  slot: number;
  scale: number;
  /**
   * Sliding-window attention (Mistral): the query at position p sees the keys p - window < j <= p.
   * 0 or absent: every key from the row's padding.
   */
  window?: number;
  /** Logit soft-capping (Gemma 2): each score s becomes cap tanh(s / cap); 0 or absent: none. */
  softcap?: number;
  /** Lanes per workgroup (they split the keys); default by adapter class. */
  lanes?: number;
}

const FIELDS: UniformField[] = [
  { name: 'slot', type: 'u32' },
  { name: 'capacity', type: 'u32' },
  { name: 'heads', type: 'u32' },
  { name: 'kv_heads', type: 'u32' },
  { name: 'group', type: 'u32' },
  { name: 'width', type: 'u32' },
  { name: 'half', type: 'u32' },
  { name: 'positions', type: 'u32' },
  { name: 'scale', type: 'f32' },
  { name: 'eps', type: 'f32' },
  { name: 'window', type: 'u32' },
  { name: 'softcap', type: 'f32' },
];

/**
 * One decode step's attention for every row and head in one dispatch (a workgroup per row and
 * query head): per-head q/k RMSNorm where the model has it, rotary at the row's position, the new
 * key and value written into the cache (by the first query head of each key head), and softmax
 * attention over the cached keys. The workgroup's lanes split the keys (lane t takes keys t,
 * t + lanes, ...), each with its own online softmax and output row in registers, and combine
 * them once at the end through workgroup memory: one barrier, and no lane idles on a score row
 * (the old tile-per-64-keys form spent most of its time in barriers and serial tile sums on
 * lavapipe). The step's own key and value come from the registers, so no workgroup reads a cache
 * slot another one is writing.
 */
export function decodeAttention(device: Device, options: DecodeAttentionOptions): void {
  const { qkv, cos, sin, padding, keys, values, qkNorm, out, heads, kvHeads, slot, scale } = options;
  const [rows, capacity, cacheHeads, headDim] = keys.shape;
  const width = (heads + 2 * kvHeads) * headDim;
  if (qkv.rank !== 2 || qkv.shape[0] !== rows || qkv.shape[1] !== width) {
    throw new TensorError(`decodeAttention: qkv ${qkv.describe()} is not [${rows}, ${width}]`);
  }
  if (cacheHeads !== kvHeads || heads % kvHeads !== 0 || headDim % 2 !== 0) {
    throw new TensorError(`decodeAttention: ${heads} heads over a cache ${keys.describe()}`);
  }
  if (slot >= capacity) throw new TensorError(`decodeAttention: slot ${slot} outside a cache of ${capacity}`);
  if (cos.shape[1] !== headDim / 2 || cos.shape[0] <= slot) {
    throw new TensorError(`decodeAttention: rotary table ${cos.describe()} does not cover slot ${slot}`);
  }
  if (padding.size !== rows || out.shape[0] !== rows || out.shape[1] !== heads * headDim) {
    throw new TensorError(`decodeAttention: padding ${padding.describe()} or out ${out.describe()} is off`);
  }
  const norm = !!qkNorm;
  // Software rasterisers run a workgroup as one SIMD vector of 8 lanes; GPUs want a warp, as far
  // as the lanes' output rows fit the 16 KiB of workgroup memory every adapter has.
  const lanes =
    options.lanes ??
    (device.info.adapterClass === 'software'
      ? 8
      : Math.max(4, Math.min(32, 2 ** Math.floor(Math.log2(3584 / headDim)))));
  // 9 storage buffers with the norms; fewer on the device: both norms read from one buffer.
  const joint = qkNorm && storageBuffersPerStage(device) < 9 ? jointTensor(device, qkNorm.q, qkNorm.k) : null;
  const norms = joint ? [joint] : qkNorm ? [qkNorm.q, qkNorm.k] : [];
  device.dispatch({
    key: `${KERNELS.decode}:attention:${headDim}:${norm ? 'qknorm' : 'plain'}:${lanes}${joint ? ':joint' : ''}`,
    source: () => attentionSource(headDim, norm, lanes, !!joint),
    bindings: [qkv, cos, sin, padding, ...norms, keys, values, out],
    uniforms: {
      fields: FIELDS,
      values: {
        slot,
        capacity,
        heads,
        kv_heads: kvHeads,
        group: heads / kvHeads,
        width,
        half: headDim / 2,
        positions: cos.shape[0],
        scale,
        eps: qkNorm?.eps ?? 0,
        window: options.window ?? 0,
        softcap: options.softcap ?? 0,
      },
    },
    workgroups: [heads, rows],
  });
  joint?.dispose();
}

function attentionSource(D: number, qkNorm: boolean, L: number, joint: boolean): string {
  const normOf = (vector: string, weight: string) => `
  {
    var squares = 0.0;
    for (var i = 0u; i < ${D}u; i++) { squares += ${vector}[i] * ${vector}[i]; }
    let inverse = inverseSqrt(squares / ${D}.0 + params.eps);
    for (var i = 0u; i < ${D}u; i++) { ${vector}[i] = ${vector}[i] * inverse * ${weight}[i]; }
  }`;
  const body = `
  let head = wid.x;
  let row = wid.y;
  let lane = lid.x;
  let kv = head / params.group;
  let pad = padding[row];
  let slot = params.slot;
  let position = min(select(0u, slot - pad, slot >= pad), params.positions - 1u);
  let base = row * params.width;
  let k_base = base + params.heads * ${D}u + kv * ${D}u;
  let v_base = k_base + params.kv_heads * ${D}u;
  var q: array<f32, ${D}>;
  var k: array<f32, ${D}>;
  for (var i = 0u; i < ${D}u; i++) {
    q[i] = qkv[base + head * ${D}u + i];
    k[i] = qkv[k_base + i];
  }
  ${qkNorm ? normOf('q', 'q_norm') + normOf('k', 'k_norm') : ''}
  for (var i = 0u; i < params.half; i++) {
    let c = cos_table[position * params.half + i];
    let s = sin_table[position * params.half + i];
    let q1 = q[i];
    let q2 = q[i + params.half];
    q[i] = q1 * c - q2 * s;
    q[i + params.half] = q2 * c + q1 * s;
    let k1 = k[i];
    let k2 = k[i + params.half];
    k[i] = k1 * c - k2 * s;
    k[i + params.half] = k2 * c + k1 * s;
  }
  let cache_row = row * params.capacity;
  if (head % params.group == 0u && lane == 0u) {
    let at = ((cache_row + slot) * params.kv_heads + kv) * ${D}u;
    for (var i = 0u; i < ${D}u; i++) {
      key_cache[at + i] = k[i];
      value_cache[at + i] = qkv[v_base + i];
    }
  }
  // This lane's keys: the cached ones before the slot, then (lane 0) the step's own.
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, ${D}>;
  for (var i = 0u; i < ${D}u; i++) { acc[i] = 0.0; }
  // The first key this row sees: its padding, or the window's start.
  var first = pad;
  if (params.window > 0u && slot + 1u > params.window) { first = max(pad, slot + 1u - params.window); }
  for (var j = first + lane; j < slot; j += ${L}u) {
    let at = ((cache_row + j) * params.kv_heads + kv) * ${D}u;
    var total = 0.0;
    for (var i = 0u; i < ${D}u; i++) { total += q[i] * key_cache[at + i]; }
    let score = soft_cap(total * params.scale);
    let top = max(m, score);
    let correction = exp(m - top);
    let weight = exp(score - top);
    l = l * correction + weight;
    m = top;
    for (var i = 0u; i < ${D}u; i++) { acc[i] = acc[i] * correction + weight * value_cache[at + i]; }
  }
  if (lane == 0u) {
    var total = 0.0;
    for (var i = 0u; i < ${D}u; i++) { total += q[i] * k[i]; }
    let score = soft_cap(total * params.scale);
    let top = max(m, score);
    let correction = exp(m - top);
    let weight = exp(score - top);
    l = l * correction + weight;
    m = top;
    for (var i = 0u; i < ${D}u; i++) { acc[i] = acc[i] * correction + weight * qkv[v_base + i]; }
  }
  lane_max[lane] = m;
  lane_sum[lane] = l;
  for (var i = 0u; i < ${D}u; i++) { lane_acc[lane * ${D}u + i] = acc[i]; }
  workgroupBarrier();
  var top = -3.0e38;
  for (var t = 0u; t < ${L}u; t++) { top = max(top, lane_max[t]); }
  var factors: array<f32, ${L}>;
  var total = 0.0;
  for (var t = 0u; t < ${L}u; t++) {
    factors[t] = exp(lane_max[t] - top);
    total += lane_sum[t] * factors[t];
  }
  let out_base = row * params.heads * ${D}u + head * ${D}u;
  for (var i = lane; i < ${D}u; i += ${L}u) {
    var value = 0.0;
    for (var t = 0u; t < ${L}u; t++) { value += lane_acc[t * ${D}u + i] * factors[t]; }
    out[out_base + i] = value / total;
  }`;
  const spec: KernelSourceSpec = {
    storage: [
      { name: 'qkv', type: 'f32', access: 'read' },
      { name: 'cos_table', type: 'f32', access: 'read' },
      { name: 'sin_table', type: 'f32', access: 'read' },
      { name: 'padding', type: 'u32', access: 'read' },
      ...(qkNorm
        ? [
            { name: 'q_norm', type: 'f32' as const, access: 'read' as const },
            { name: 'k_norm', type: 'f32' as const, access: 'read' as const },
          ]
        : []),
      { name: 'key_cache', type: 'f32', access: 'read_write' },
      { name: 'value_cache', type: 'f32', access: 'read_write' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: L,
    helpers: [
      // cap tanh(s / cap) where params.softcap > 0 (tanh's argument clamped: exact 1 past 15).
      `fn soft_cap(s: f32) -> f32 {
  if (params.softcap > 0.0) { return params.softcap * tanh(clamp(s / params.softcap, -15.0, 15.0)); }
  return s;
}`,
      `var<workgroup> lane_max: array<f32, ${L}>;`,
      `var<workgroup> lane_sum: array<f32, ${L}>;`,
      `var<workgroup> lane_acc: array<f32, ${L * D}>;`,
    ].join('\n'),
    body,
  };
  return kernelSource(joint ? jointBindingSpec(spec, 'q_norm', 'k_norm', 'qk_norm', `${D}u`) : spec);
}
