import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { jointBindingSpec, jointTensor, storageBuffersPerStage } from '../shared/joint-binding.js';
import { type KernelSourceSpec, kernelSource } from '../shared/wgsl.js';

export interface PrefillAttentionOptions {
  /**
   * [rows * steps, (heads + 2 kvHeads) headDim] f32: q, k and v of every prompt position
   * (decodeMatvec 'store' over the prompt's rows, row-major: row r's step t is row r steps + t).
   */
  qkv: Tensor;
  /** Rotary tables [positions, headDim / 2] f32 (rotate-half layout), indexed by position. */
  cos: Tensor;
  sin: Tensor;
  /** [rows] u32: left padding of each row; position = slot - padding, keys before it skipped. */
  padding: Tensor;
  /** Caches [rows, capacity, kvHeads, headDim] f32: the steps' keys and values land at start + t. */
  keys: Tensor;
  values: Tensor;
  /** Per-head RMSNorm of q and k (Qwen3) before the rotation. */
  qkNorm?: { q: Tensor; k: Tensor; eps: number } | null;
  /** [rows * steps, heads headDim] f32: the attention output of every position. */
  out: Tensor;
  heads: number;
  kvHeads: number;
  /** Cache slot of the first step (positions filled before the prompt, usually 0). */
  start: number;
  steps: number;
  scale: number;
  /** Positions per workgroup of the attention (one per lane); default by adapter class. */
  lanes?: number;
}

/** What prefillAppend needs: prefillAttention's inputs, and where the rotated queries go. */
export interface PrefillAppendOptions extends Omit<PrefillAttentionOptions, 'out' | 'lanes' | 'scale'> {
  /**
   * [rows * steps, heads headDim] f32: every position's query heads, normalised (Qwen3) and
   * rotated, for the attention op (kernels/attention) to read as [rows, steps, heads, headDim].
   */
  queries: Tensor;
}

const FIELDS: UniformField[] = [
  { name: 'start', type: 'u32' },
  { name: 'steps', type: 'u32' },
  { name: 'capacity', type: 'u32' },
  { name: 'heads', type: 'u32' },
  { name: 'kv_heads', type: 'u32' },
  { name: 'group', type: 'u32' },
  { name: 'width', type: 'u32' },
  { name: 'half', type: 'u32' },
  { name: 'positions', type: 'u32' },
  { name: 'count', type: 'u32' },
  { name: 'scale', type: 'f32' },
  { name: 'eps', type: 'f32' },
];

/**
 * A prompt's attention in two dispatches, reading q/k/v where the fused products left them:
 * the first normalises (Qwen3) and rotates every position's keys and writes keys and values
 * straight into the KV cache at start + t; the second gives each lane one position of one query
 * head, a workgroup holding consecutive positions, so its lanes walk the same keys
 * [padding, start + t] (shared loads, no barrier), each with its own online softmax. No score
 * matrix and no separate key/value tensors exist. A position inside a row's left padding sees no key and gets zeros.
 */
export function prefillAttention(device: Device, options: PrefillAttentionOptions): void {
  const { qkv, cos, sin, padding, keys, values, qkNorm, out, heads, steps } = options;
  const { rows, headDim, uniformsFor } = checkPrefillInputs('prefillAttention', options, options.scale);
  if (out.shape[0] !== rows * steps || out.shape[1] !== heads * headDim) {
    throw new TensorError(
      `prefillAttention: out ${out.describe()} is not [${rows * steps}, ${heads * headDim}]`,
    );
  }
  const norm = !!qkNorm;
  const lanes = options.lanes ?? (device.info.adapterClass === 'software' ? 8 : 32);
  // The attention binds 9 storage buffers with the norms; fewer on the device: one buffer for both.
  const joint = qkNorm && storageBuffersPerStage(device) < 9 ? jointTensor(device, qkNorm.q, qkNorm.k) : null;
  const suffix = joint ? ':joint' : '';
  const common = [qkv, cos, sin, padding, ...(joint ? [joint] : qkNorm ? [qkNorm.q, qkNorm.k] : [])];
  const appends = rows * steps * options.kvHeads;
  device.dispatch({
    key: `${KERNELS.decode}:prefill-append:${headDim}:${norm ? 'qknorm' : 'plain'}${suffix}`,
    source: () => appendSource(headDim, norm, false, !!joint),
    bindings: [...common, keys, values],
    uniforms: { fields: FIELDS, values: uniformsFor(appends) },
    workgroups: grid(Math.ceil(appends / 64), device.maxWorkgroupsPerDimension),
  });
  const queries = rows * Math.ceil(steps / lanes) * heads;
  device.dispatch({
    key: `${KERNELS.decode}:prefill-attention:${headDim}:${norm ? 'qknorm' : 'plain'}:${lanes}${suffix}`,
    source: () => attentionSource(headDim, norm, lanes, !!joint),
    bindings: [...common, keys, values, out],
    uniforms: { fields: FIELDS, values: uniformsFor(queries) },
    workgroups: grid(queries, device.maxWorkgroupsPerDimension),
  });
  joint?.dispose();
}

/**
 * The first half of prefillAttention for a prompt whose attention runs through the attention op
 * (kernels/attention, the forward's kernel: tiles of keys, fast at every head size): one dispatch
 * normalises (Qwen3) and rotates every position's keys into the KV cache at start + t, copies the
 * values there, and writes the normalised, rotated query heads to `queries`.
 */
export function prefillAppend(device: Device, options: PrefillAppendOptions): void {
  const { qkv, cos, sin, padding, keys, values, qkNorm, queries, heads, kvHeads, steps } = options;
  const { rows, headDim, uniformsFor } = checkPrefillInputs('prefillAppend', options, 1);
  if (queries.size !== rows * steps * heads * headDim || queries.dtype !== 'f32') {
    throw new TensorError(
      `prefillAppend: queries ${queries.describe()} is not ${rows * steps * heads * headDim} f32 values`,
    );
  }
  const norm = !!qkNorm;
  // 9 storage buffers with the norms; fewer on the device: both norms read from one buffer.
  const joint = qkNorm && storageBuffersPerStage(device) < 9 ? jointTensor(device, qkNorm.q, qkNorm.k) : null;
  const norms = joint ? [joint] : qkNorm ? [qkNorm.q, qkNorm.k] : [];
  const bindings = [qkv, cos, sin, padding, ...norms, keys, values, queries];
  if (!norm && headDim % 8 === 0 && headDim >= 16) {
    // One invocation per rotated vec4 pair (i, i + half) of one head: lanes along the head. At head
    // size 8 (one pair per head) it was no faster than the per-head kernel on lavapipe.
    const pairs = headDim / 8;
    const count = rows * steps * (kvHeads + heads) * pairs;
    device.dispatch({
      key: `${KERNELS.decode}:prefill-append:${headDim}:pairs`,
      source: () => appendPairsSource(headDim),
      bindings,
      uniforms: { fields: FIELDS, values: uniformsFor(count) },
      workgroups: grid(Math.ceil(count / 64), device.maxWorkgroupsPerDimension),
    });
    return;
  }
  const count = rows * steps * (kvHeads + heads);
  device.dispatch({
    key: `${KERNELS.decode}:prefill-append:${headDim}:${norm ? 'qknorm' : 'plain'}:queries${joint ? ':joint' : ''}`,
    source: () => appendSource(headDim, norm, true, !!joint),
    bindings,
    uniforms: { fields: FIELDS, values: uniformsFor(count) },
    workgroups: grid(Math.ceil(count / 64), device.maxWorkgroupsPerDimension),
  });
  joint?.dispose();
}

/**
 * prefillAppend without q/k norms at a head size that is a multiple of 8 from 16: one invocation per pair
 * of vec4s (i, i + half) of one head of one position, so consecutive lanes read consecutive
 * vectors of q/k/v and the rotary tables and nothing loops. The per-head kernel (appendSource)
 * ran one invocation per head with its loops over a private array: 24 workgroups whose every
 * access was a gather on lavapipe, 0.7 ms at the stories15M shape.
 */
function appendPairsSource(D: number): string {
  const P = D / 8;
  const body = `
  let index = flat_workgroup(wid, nwg) * 64u + lid.x;
  if (index >= params.count) { return; }
  let c = index % ${P}u;
  let item = (index / ${P}u) % (params.kv_heads + params.heads);
  let step_row = index / ${P}u / (params.kv_heads + params.heads);
  let row = step_row / params.steps;
  let step = step_row % params.steps;
  let pad = padding[row];
  let slot = params.start + step;
  let position = min(select(0u, slot - pad, slot >= pad), params.positions - 1u);
  // In vec4s: a row of q/k/v, a head, a rotary row.
  let base = step_row * (params.width / 4u);
  let cos_v = cos_table[position * ${P}u + c];
  let sin_v = sin_table[position * ${P}u + c];
  if (item < params.kv_heads) {
    let kv = item;
    let k_from = base + (params.heads + kv) * ${D / 4}u + c;
    let v_from = k_from + params.kv_heads * ${D / 4}u;
    let a = qkv[k_from];
    let b = qkv[k_from + ${P}u];
    let at = ((row * params.capacity + slot) * params.kv_heads + kv) * ${D / 4}u + c;
    key_cache[at] = a * cos_v - b * sin_v;
    key_cache[at + ${P}u] = b * cos_v + a * sin_v;
    value_cache[at] = qkv[v_from];
    value_cache[at + ${P}u] = qkv[v_from + ${P}u];
  } else {
    let head = item - params.kv_heads;
    let q_from = base + head * ${D / 4}u + c;
    let a = qkv[q_from];
    let b = qkv[q_from + ${P}u];
    let to = (step_row * params.heads + head) * ${D / 4}u + c;
    query_out[to] = a * cos_v - b * sin_v;
    query_out[to + ${P}u] = b * cos_v + a * sin_v;
  }`;
  const vec = 'vec4<f32>' as const;
  return kernelSource({
    storage: [
      { name: 'qkv', type: vec, access: 'read' },
      { name: 'cos_table', type: vec, access: 'read' },
      { name: 'sin_table', type: vec, access: 'read' },
      { name: 'padding', type: 'u32', access: 'read' },
      { name: 'key_cache', type: vec, access: 'read_write' },
      { name: 'value_cache', type: vec, access: 'read_write' },
      { name: 'query_out', type: vec, access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: 64,
    body,
  });
}

const STORAGE = (qkNorm: boolean) => [
  { name: 'qkv', type: 'f32' as const, access: 'read' as const },
  { name: 'cos_table', type: 'f32' as const, access: 'read' as const },
  { name: 'sin_table', type: 'f32' as const, access: 'read' as const },
  { name: 'padding', type: 'u32' as const, access: 'read' as const },
  ...(qkNorm
    ? [
        { name: 'q_norm', type: 'f32' as const, access: 'read' as const },
        { name: 'k_norm', type: 'f32' as const, access: 'read' as const },
      ]
    : []),
];

/** A kernel's source, its q and k norm weights read from one joint buffer (q's, then k's) where `joint`. */
function normedSource(D: number, joint: boolean, spec: KernelSourceSpec): string {
  return kernelSource(joint ? jointBindingSpec(spec, 'q_norm', 'k_norm', 'qk_norm', `${D}u`) : spec);
}

/** Loads head vector `name` from qkv at `from`, normalises it with `weight` and rotates it to `position`. */
function rotatedHead(D: number, name: string, from: string, weight: string | null): string {
  return `
  var ${name}: array<f32, ${D}>;
  for (var i = 0u; i < ${D}u; i++) { ${name}[i] = qkv[${from} + i]; }
  ${
    weight
      ? `{
    var squares = 0.0;
    for (var i = 0u; i < ${D}u; i++) { squares += ${name}[i] * ${name}[i]; }
    let inverse = inverseSqrt(squares / ${D}.0 + params.eps);
    for (var i = 0u; i < ${D}u; i++) { ${name}[i] = ${name}[i] * inverse * ${weight}[i]; }
  }`
      : ''
  }
  for (var i = 0u; i < params.half; i++) {
    let c = cos_table[position * params.half + i];
    let s = sin_table[position * params.half + i];
    let a = ${name}[i];
    let b = ${name}[i + params.half];
    ${name}[i] = a * c - b * s;
    ${name}[i + params.half] = b * c + a * s;
  }`;
}

/** Shared prologue: which row and step `index` (over rows * steps * per) names, its slot and position. */
function locate(per: string): string {
  return `
  let step_row = index / ${per};
  let row = step_row / params.steps;
  let step = step_row % params.steps;
  let pad = padding[row];
  let slot = params.start + step;
  let position = min(select(0u, slot - pad, slot >= pad), params.positions - 1u);
  let base = step_row * params.width;`;
}

/** Keys and values into the cache; with `queries`, each position's query heads rotated as well. */
function appendSource(D: number, qkNorm: boolean, queries: boolean, joint: boolean): string {
  const append = `
  let k_from = base + params.heads * ${D}u + kv * ${D}u;
  let v_from = k_from + params.kv_heads * ${D}u;
  ${rotatedHead(D, 'k', 'k_from', qkNorm ? 'k_norm' : null)}
  let at = ((row * params.capacity + slot) * params.kv_heads + kv) * ${D}u;
  for (var i = 0u; i < ${D}u; i++) {
    key_cache[at + i] = k[i];
    value_cache[at + i] = qkv[v_from + i];
  }`;
  const body = queries
    ? `
  let index = flat_workgroup(wid, nwg) * 64u + lid.x;
  if (index >= params.count) { return; }
  let item = index % (params.kv_heads + params.heads);
  ${locate('(params.kv_heads + params.heads)')}
  if (item < params.kv_heads) {
    let kv = item;
    ${append}
  } else {
    let head = item - params.kv_heads;
    ${rotatedHead(D, 'q', `base + head * ${D}u`, qkNorm ? 'q_norm' : null)}
    let to = (step_row * params.heads + head) * ${D}u;
    for (var i = 0u; i < ${D}u; i++) { query_out[to + i] = q[i]; }
  }`
    : `
  let index = flat_workgroup(wid, nwg) * 64u + lid.x;
  if (index >= params.count) { return; }
  let kv = index % params.kv_heads;
  ${locate('params.kv_heads')}
  ${append}`;
  return normedSource(D, joint, {
    storage: [
      ...STORAGE(qkNorm),
      { name: 'key_cache', type: 'f32', access: 'read_write' },
      { name: 'value_cache', type: 'f32', access: 'read_write' },
      ...(queries ? [{ name: 'query_out', type: 'f32' as const, access: 'read_write' as const }] : []),
    ],
    uniforms: FIELDS,
    workgroupSize: 64,
    body,
  });
}

function attentionSource(D: number, qkNorm: boolean, L: number, joint: boolean): string {
  const body = `
  // Workgroup: L consecutive positions of one query head of one row; lane = position.
  let group_index = flat_workgroup(wid, nwg);
  let blocks = (params.steps + ${L - 1}u) / ${L}u;
  if (group_index >= params.count) { return; }
  let head = group_index % params.heads;
  let block_row = group_index / params.heads;
  let row = block_row / blocks;
  let first = (block_row % blocks) * ${L}u;
  let step = min(first + lid.x, params.steps - 1u);
  let last = min(first + ${L - 1}u, params.steps - 1u);
  let step_row = row * params.steps + step;
  let kv = head / params.group;
  let pad = padding[row];
  let slot = params.start + step;
  let position = min(select(0u, slot - pad, slot >= pad), params.positions - 1u);
  let base = step_row * params.width;
  ${rotatedHead(D, 'q', `base + head * ${D}u`, qkNorm ? 'q_norm' : null)}
  let cache_row = row * params.capacity;
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, ${D}>;
  for (var i = 0u; i < ${D}u; i++) { acc[i] = 0.0; }
  // Every lane walks the same keys (the loads are shared); a lane skips those after its slot.
  let end = params.start + last;
  for (var j = pad; j <= end; j++) {
    if (j <= slot) {
      let at = ((cache_row + j) * params.kv_heads + kv) * ${D}u;
      var total = 0.0;
      for (var i = 0u; i < ${D}u; i++) { total += q[i] * key_cache[at + i]; }
      let score = total * params.scale;
      let top = max(m, score);
      let correction = exp(m - top);
      let weight = exp(score - top);
      l = l * correction + weight;
      m = top;
      for (var i = 0u; i < ${D}u; i++) { acc[i] = acc[i] * correction + weight * value_cache[at + i]; }
    }
  }
  // A position inside the left padding has no key: zeros, not 0 / 0.
  let inverse = select(0.0, 1.0 / l, l > 0.0);
  if (first + lid.x < params.steps) {
    let out_base = step_row * params.heads * ${D}u + head * ${D}u;
    for (var i = 0u; i < ${D}u; i++) { out[out_base + i] = acc[i] * inverse; }
  }`;
  return normedSource(D, joint, {
    storage: [
      ...STORAGE(qkNorm),
      { name: 'key_cache', type: 'f32', access: 'read' },
      { name: 'value_cache', type: 'f32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: L,
    body,
  });
}

/**
 * The checks prefillAttention and prefillAppend share (q/k/v, the cache, the rotary table, the
 * padding), and their uniform values for `count` invocations.
 */
function checkPrefillInputs(
  name: string,
  options: Omit<PrefillAttentionOptions, 'out' | 'lanes' | 'scale'>,
  scale: number,
) {
  const { qkv, cos, padding, keys, qkNorm, heads, kvHeads, start, steps } = options;
  const [rows, capacity, cacheHeads, headDim] = keys.shape;
  const width = (heads + 2 * kvHeads) * headDim;
  if (qkv.rank !== 2 || qkv.shape[0] !== rows * steps || qkv.shape[1] !== width) {
    throw new TensorError(`${name}: qkv ${qkv.describe()} is not [${rows * steps}, ${width}]`);
  }
  if (cacheHeads !== kvHeads || heads % kvHeads !== 0 || headDim % 2 !== 0) {
    throw new TensorError(`${name}: ${heads} heads over a cache ${keys.describe()}`);
  }
  if (start + steps > capacity) {
    throw new TensorError(`${name}: ${steps} steps after ${start} outside a cache of ${capacity}`);
  }
  if (cos.shape[1] !== headDim / 2) {
    throw new TensorError(`${name}: rotary table ${cos.describe()} is not for head size ${headDim}`);
  }
  if (padding.size !== rows) {
    throw new TensorError(`${name}: padding ${padding.describe()} is not one value per row (${rows})`);
  }
  const uniformsFor = (count: number) => ({
    start,
    steps,
    capacity,
    heads,
    kv_heads: kvHeads,
    group: heads / kvHeads,
    width,
    half: headDim / 2,
    positions: cos.shape[0],
    count,
    scale,
    eps: qkNorm?.eps ?? 0,
  });
  return { rows, headDim, uniformsFor };
}
