import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';

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
}

const LANES = 64;

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
];

/**
 * One decode step's attention for every row and head in one dispatch (a workgroup per row and
 * query head): per-head q/k RMSNorm where the model has it, rotary at the row's position, the new
 * key and value written into the cache (by the first query head of each key head), and softmax
 * attention over the cached keys with an online softmax in tiles of LANES keys, so the score row
 * is never stored. The step's own key and value come from workgroup memory, so no workgroup
 * reads a cache slot another one is writing.
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
  device.dispatch({
    key: `${KERNELS.decode}:attention:${headDim}:${norm ? 'qknorm' : 'plain'}`,
    source: () => attentionSource(headDim, norm),
    bindings: [qkv, cos, sin, padding, ...(qkNorm ? [qkNorm.q, qkNorm.k] : []), keys, values, out],
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
      },
    },
    workgroups: [heads, rows],
  });
}

function attentionSource(D: number, qkNorm: boolean): string {
  const L = LANES;
  const A = Math.ceil(D / L);
  const normPart = (vector: string, weight: string) => `
  {
    var squares = 0.0;
    for (var i = lid.x; i < ${D}u; i += ${L}u) { squares += ${vector}[i] * ${vector}[i]; }
    scores[lid.x] = squares;
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < ${L}u; i++) { total += scores[i]; }
    let inverse = inverseSqrt(total / ${D}.0 + params.eps);
    workgroupBarrier();
    for (var i = lid.x; i < ${D}u; i += ${L}u) { ${vector}[i] = ${vector}[i] * inverse * ${weight}[i]; }
    workgroupBarrier();
  }`;
  const accumulators = Array.from({ length: A }, (_, a) => a);
  const body = `
  let head = wid.x;
  let row = wid.y;
  let kv = head / params.group;
  if (lid.x == 0u) { pad_shared = padding[row]; }
  let pad = workgroupUniformLoad(&pad_shared);
  let slot = params.slot;
  let position = min(select(0u, slot - pad, slot >= pad), params.positions - 1u);
  let base = row * params.width;
  let k_base = base + params.heads * ${D}u + kv * ${D}u;
  let v_base = k_base + params.kv_heads * ${D}u;
  for (var i = lid.x; i < ${D}u; i += ${L}u) {
    qs[i] = qkv[base + head * ${D}u + i];
    ks[i] = qkv[k_base + i];
    vs[i] = qkv[v_base + i];
  }
  workgroupBarrier();
  ${qkNorm ? normPart('qs', 'q_norm') + normPart('ks', 'k_norm') : ''}
  for (var i = lid.x; i < params.half; i += ${L}u) {
    let c = cos_table[position * params.half + i];
    let s = sin_table[position * params.half + i];
    let q1 = qs[i];
    let q2 = qs[i + params.half];
    qs[i] = q1 * c - q2 * s;
    qs[i + params.half] = q2 * c + q1 * s;
    let k1 = ks[i];
    let k2 = ks[i + params.half];
    ks[i] = k1 * c - k2 * s;
    ks[i + params.half] = k2 * c + k1 * s;
  }
  workgroupBarrier();
  let cache_row = row * params.capacity;
  if (head % params.group == 0u) {
    let at = ((cache_row + slot) * params.kv_heads + kv) * ${D}u;
    for (var i = lid.x; i < ${D}u; i += ${L}u) {
      key_cache[at + i] = ks[i];
      value_cache[at + i] = vs[i];
    }
  }
  var m = -3.0e38;
  var l = 0.0;
  ${accumulators.map((a) => `var acc_${a} = 0.0;`).join('\n  ')}
  for (var tile = pad; tile <= slot; tile += ${L}u) {
    let j = tile + lid.x;
    var score = -3.0e38;
    if (j <= slot) {
      var total = 0.0;
      if (j == slot) {
        for (var i = 0u; i < ${D}u; i++) { total += qs[i] * ks[i]; }
      } else {
        let at = ((cache_row + j) * params.kv_heads + kv) * ${D}u;
        for (var i = 0u; i < ${D}u; i++) { total += qs[i] * key_cache[at + i]; }
      }
      score = total * params.scale;
    }
    scores[lid.x] = score;
    workgroupBarrier();
    var tile_max = m;
    for (var t = 0u; t < ${L}u; t++) { tile_max = max(tile_max, scores[t]); }
    let correction = exp(m - tile_max);
    workgroupBarrier();
    scores[lid.x] = select(0.0, exp(score - tile_max), j <= slot);
    workgroupBarrier();
    var weight_sum = 0.0;
    for (var t = 0u; t < ${L}u; t++) { weight_sum += scores[t]; }
    l = l * correction + weight_sum;
    m = tile_max;
    let keys_here = min(${L}u, slot + 1u - tile);
    ${accumulators
      .map(
        (a) => `{
      let dim = lid.x + ${a * L}u;
      var value = acc_${a} * correction;
      if (dim < ${D}u) {
        for (var t = 0u; t < keys_here; t++) {
          let key = tile + t;
          var v = vs[dim];
          if (key != slot) { v = value_cache[((cache_row + key) * params.kv_heads + kv) * ${D}u + dim]; }
          value += scores[t] * v;
        }
      }
      acc_${a} = value;
    }`,
      )
      .join('\n    ')}
    workgroupBarrier();
  }
  let out_base = row * params.heads * ${D}u + head * ${D}u;
  ${accumulators.map((a) => `if (lid.x + ${a * L}u < ${D}u) { out[out_base + lid.x + ${a * L}u] = acc_${a} / l; }`).join('\n  ')}`;
  return kernelSource({
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
      `var<workgroup> qs: array<f32, ${D}>;`,
      `var<workgroup> ks: array<f32, ${D}>;`,
      `var<workgroup> vs: array<f32, ${D}>;`,
      `var<workgroup> scores: array<f32, ${L}>;`,
      'var<workgroup> pad_shared: u32;',
    ].join('\n'),
    body,
  });
}
