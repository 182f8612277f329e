import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';

/** The sizes of one Llama-family decoder layer (f32). */
export interface DecodeLayerShape {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** q/k/v biases (Qwen2). */
  bias: boolean;
  /** Per-head RMSNorm of q and k (Qwen3). */
  qkNorm: boolean;
}

/**
 * Where each parameter of a layer sits in its packed f32 buffer (element offsets, each a multiple
 * of 4): the input norm [H], q, k and v stacked [(heads + 2 kvHeads) D, H], their biases, the q/k
 * norms [D], o_proj [H, heads D], the post-attention norm [H], gate and up [I, H], down [H, I].
 */
export interface DecodeLayerLayout {
  inputNorm: number;
  qkv: number;
  qkvBias: number | null;
  qNorm: number | null;
  kNorm: number | null;
  o: number;
  postNorm: number;
  gate: number;
  up: number;
  down: number;
  /** Elements of the whole buffer. */
  length: number;
}

/** Rounds up to a multiple of 4 (every part starts on a vec4). */
const align = (n: number) => Math.ceil(n / 4) * 4;

/** The packed buffer's layout for a layer of this shape. */
export function decodeLayerLayout(shape: DecodeLayerShape): DecodeLayerLayout {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: D } = shape;
  const width = (heads + 2 * kvHeads) * D;
  let at = 0;
  const take = (n: number) => {
    const start = at;
    at += align(n);
    return start;
  };
  const inputNorm = take(H);
  const qkv = take(width * H);
  const qkvBias = shape.bias ? take(width) : null;
  const qNorm = shape.qkNorm ? take(D) : null;
  const kNorm = shape.qkNorm ? take(D) : null;
  const o = take(H * heads * D);
  const postNorm = take(H);
  const gate = take(I * H);
  const up = take(I * H);
  const down = take(H * I);
  return { inputNorm, qkv, qkvBias, qNorm, kNorm, o, postNorm, gate, up, down, length: at };
}

/** Floats of workgroup memory the layer kernel holds for a shape and lane count. */
function workgroupFloats(shape: DecodeLayerShape, lanes: number): number {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: D } = shape;
  const splits = keySplits(shape, lanes);
  const items = heads * splits;
  return 2 * H + (heads + 2 * kvHeads) * D + heads * D + I + items * (D + 2);
}

/** Lanes per head in the attention: as many as the workgroup has per head, at most 512 floats each. */
function keySplits(shape: DecodeLayerShape, lanes: number): number {
  return Math.max(
    1,
    Math.min(Math.floor(lanes / shape.heads), Math.floor(2048 / (shape.heads * shape.headDim))),
  );
}

/** Lanes of the layer kernel: one SIMD vector on software rasterisers, two warps on GPUs. */
function layerLanes(device: Device): number {
  return device.info.adapterClass === 'software' ? 8 : 64;
}

/** Storage buffers a last layer binds with the head and argmax (and the embedding, for one layer). */
export const DECODE_LAYER_HEAD_BUFFERS = 13;

/** Weights (elements) up to which a layer takes one workgroup in one dispatch (see decodeLayer). */
export const DECODE_LAYER_MAX_WEIGHTS = 1 << 17;

/**
 * Why `decodeLayer` cannot run a layer of this shape on this device, or null. It is meant for
 * small layers: above DECODE_LAYER_MAX_WEIGHTS weights one workgroup streaming them all costs more
 * than the dispatches it saves.
 */
export function decodeLayerUnsupported(
  device: Device,
  shape: DecodeLayerShape,
  lanes = layerLanes(device),
): string | null {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: D } = shape;
  const weights = (heads + 2 * kvHeads) * D * H + H * heads * D + 3 * I * H;
  const most = device.tuning.decodeLayerMaxWeights;
  if (weights > most) return `${weights} weights per layer (one workgroup per layer takes up to ${most})`;
  if (H % 4 !== 0 || I % 4 !== 0 || (heads * D) % 4 !== 0 || D % 2 !== 0 || heads % kvHeads !== 0)
    return 'sizes not a multiple of 4';
  const bytes = workgroupFloats(shape, lanes) * 4;
  if (bytes > device.gpu.limits.maxComputeWorkgroupStorageSize) return `${bytes} bytes of workgroup memory`;
  // The first layer binds 9 storage buffers (the last one with the head and argmax 12, or 13).
  if (device.gpu.limits.maxStorageBuffersPerShaderStage < 9) return 'fewer than 9 storage buffers per stage';
  return null;
}

export interface DecodeLayerOptions {
  shape: DecodeLayerShape;
  /** The layer's parameters packed as `decodeLayerLayout(shape)` says, f32. */
  weights: Tensor;
  /** [rows, H] f32: the residual stream, read and written in place. */
  hidden: Tensor;
  /** The first layer: hidden = table[ids] first (ids [rows] i32; an id outside the table reads row 0). */
  embed?: { table: Tensor; ids: Tensor } | null;
  /** Rotary tables [positions, D / 2] f32 (rotate-half layout), indexed by position. */
  cos: Tensor;
  sin: Tensor;
  /** [rows] u32 left padding of each row (keys before it are skipped; position = slot - padding). */
  padding: Tensor;
  /** Caches [rows, capacity, kvHeads, D] f32; this step's key and value are written at `slot`. */
  keys: Tensor;
  values: Tensor;
  slot: number;
  scale: number;
  eps: number;
  /** Sliding window (the query at position p sees keys p - window < j <= p); 0 or absent: none. */
  window?: number;
  /**
   * The last layer: then the final RMSNorm (weight [H], eps) and the head [vocab, H]
   * f32 into logits [rows, vocab], and with `argmax` each row's greedy choice (the lowest index
   * among ties, -1 for a row of NaN, as decodeArgmax) into ids [rows] and tokens[at * rows + row].
   */
  head?: {
    norm: Tensor;
    eps: number;
    weight: Tensor;
    logits: Tensor;
    argmax?: { ids: Tensor; tokens: Tensor; at: number } | null;
  } | null;
  /** Lanes per workgroup; default by adapter class (8 on software rasterisers, 64 on GPUs). */
  lanes?: number;
}

const FIELDS: UniformField[] = [
  { name: 'slot', type: 'u32' },
  { name: 'capacity', type: 'u32' },
  { name: 'positions', type: 'u32' },
  { name: 'vocab', type: 'u32' },
  { name: 'scale', type: 'f32' },
  { name: 'eps', type: 'f32' },
  // Sizes: loops run to uniform bounds, so the compiler does not unroll them (llvmpipe took over
  // a minute to compile the layer with constant bounds).
  { name: 'h', type: 'u32' },
  { name: 'i', type: 'u32' },
  { name: 'w', type: 'u32' },
  { name: 'nh', type: 'u32' },
  { name: 'nkv', type: 'u32' },
  { name: 'd', type: 'u32' },
  { name: 'half', type: 'u32' },
  { name: 's', type: 'u32' },
  { name: 'group', type: 'u32' },
  { name: 'h4', type: 'u32' },
  { name: 'i4', type: 'u32' },
  { name: 'a4', type: 'u32' },
  { name: 'window', type: 'u32' },
  { name: 'head_vocab', type: 'u32' },
  { name: 'head_eps', type: 'f32' },
  { name: 'log_offset', type: 'u32' },
];

/**
 * A whole decoder layer of batch-`rows` decoding in one dispatch, one workgroup per row: RMSNorm
 * and q/k/v, q/k norm and rotary, the new key and value into the cache, attention over the cache,
 * o_proj + residual, RMSNorm and gate/up with SiLU, down_proj + residual; every intermediate stays
 * in workgroup memory. For small models (stories260K: 5 layers of 45k weights) a decode step is
 * all dispatch overhead on lavapipe; this takes one dispatch per layer instead of five. The layer's
 * parameters come packed in one buffer (`decodeLayerLayout`), so the kernel binds few buffers.
 */
export function decodeLayer(device: Device, options: DecodeLayerOptions): void {
  const { shape, weights, hidden, embed, cos, sin, padding, keys, values, slot } = options;
  const { hidden: H, heads, kvHeads, headDim: D } = shape;
  const lanes = options.lanes ?? layerLanes(device);
  const reason = decodeLayerUnsupported(device, shape, lanes);
  if (reason) throw new TensorError(`decodeLayer: ${reason}`);
  const layout = decodeLayerLayout(shape);
  const [rows, capacity, cacheHeads, cacheDim] = keys.shape;
  if (weights.dtype !== 'f32' || weights.size < layout.length)
    throw new TensorError(`decodeLayer: weights ${weights.describe()} hold fewer than ${layout.length} f32`);
  if (hidden.rank !== 2 || hidden.shape[0] !== rows || hidden.shape[1] !== H || hidden.dtype !== 'f32')
    throw new TensorError(`decodeLayer: hidden ${hidden.describe()} is not [${rows}, ${H}] f32`);
  if (cacheHeads !== kvHeads || cacheDim !== D || values.size !== keys.size)
    throw new TensorError(`decodeLayer: caches ${keys.describe()} do not hold ${kvHeads} heads of ${D}`);
  if (slot >= capacity || cos.shape[1] !== D / 2 || cos.shape[0] <= slot || padding.size !== rows)
    throw new TensorError(
      `decodeLayer: slot ${slot}, rotary ${cos.describe()} or padding ${padding.describe()}`,
    );
  if (embed && (embed.table.shape[1] !== H || embed.ids.size !== rows || embed.ids.dtype !== 'i32'))
    throw new TensorError(`decodeLayer: embedding ${embed.table.describe()} for ids ${embed.ids.describe()}`);
  const head = options.head ?? null;
  const vocab = head ? head.weight.shape[0] : 0;
  if (head) {
    const { norm, weight, logits, argmax } = head;
    if (norm.size !== H || weight.rank !== 2 || weight.shape[1] !== H || weight.dtype !== 'f32')
      throw new TensorError(
        `decodeLayer: head ${weight.describe()} or norm ${norm.describe()} does not take ${H}`,
      );
    if (logits.rank !== 2 || logits.shape[0] !== rows || logits.shape[1] !== vocab)
      throw new TensorError(`decodeLayer: logits ${logits.describe()} are not [${rows}, ${vocab}]`);
    if (argmax && (argmax.ids.size !== rows || argmax.tokens.size < (argmax.at + 1) * rows))
      throw new TensorError(
        `decodeLayer: ids ${argmax.ids.describe()} or token log ${argmax.tokens.describe()}`,
      );
  }
  const mode = head ? (head.argmax ? 'head+argmax' : 'head') : '-';
  const buffers = 7 + (embed ? (head?.argmax ? 1 : 2) : 0) + (head ? 3 : 0) + (head?.argmax ? 2 : 0);
  const limit = device.gpu.limits.maxStorageBuffersPerShaderStage;
  if (buffers > limit)
    throw new TensorError(`decodeLayer: ${buffers} storage buffers, over this device's ${limit} per stage`);
  if (embed && head?.argmax && embed.ids !== head.argmax.ids)
    throw new TensorError('decodeLayer: a layer that embeds and chooses reads and writes the same ids');
  device.dispatch({
    key: `${KERNELS.decode}:layer:${H}:${shape.intermediate}:${heads}:${kvHeads}:${D}:${shape.bias ? 'bias' : '-'}:${shape.qkNorm ? 'qknorm' : '-'}:${embed ? 'embed' : '-'}:${mode}:${lanes}`,
    source: () => layerSource(shape, layout, !!embed, mode, lanes),
    bindings: [
      weights,
      // One layer that embeds and chooses reads the ids from the argmax's binding.
      ...(embed ? [embed.table, ...(head?.argmax ? [] : [embed.ids])] : []),
      cos,
      sin,
      padding,
      keys,
      values,
      hidden,
      ...(head ? [head.norm, head.weight, head.logits] : []),
      ...(head?.argmax ? [head.argmax.ids, head.argmax.tokens] : []),
    ],
    uniforms: {
      fields: FIELDS,
      values: {
        slot,
        capacity,
        positions: cos.shape[0],
        vocab: embed ? embed.table.shape[0] : 0,
        scale: options.scale,
        eps: options.eps,
        h: H,
        i: shape.intermediate,
        w: (heads + 2 * kvHeads) * D,
        nh: heads,
        nkv: kvHeads,
        d: D,
        half: D / 2,
        s: keySplits(shape, lanes),
        group: heads / kvHeads,
        h4: H / 4,
        i4: shape.intermediate / 4,
        a4: (heads * D) / 4,
        window: options.window ?? 0,
        head_vocab: vocab,
        head_eps: head?.eps ?? 0,
        log_offset: (head?.argmax?.at ?? 0) * rows,
      },
    },
    workgroups: [rows],
  });
}

function layerSource(
  shape: DecodeLayerShape,
  layout: DecodeLayerLayout,
  embed: boolean,
  mode: 'head+argmax' | 'head' | '-',
  L: number,
): string {
  const { hidden: H, intermediate: I, heads: NH, kvHeads: NKV, headDim: D } = shape;
  const S = keySplits(shape, L);
  const W = (NH + 2 * NKV) * D;
  const v4 = (offset: number) => `${offset / 4}u`;
  /** RMSNorm of hs into xn with the norm weight at `offset`; every lane sums the squares. */
  const norm = (offset: number) => `
  {
    var squares = 0.0;
    for (var i = 0u; i < params.h; i++) { let v = hs[i]; squares += v * v; }
    let inverse = inverseSqrt(squares / f32(params.h) + params.eps);
    for (var i = lane; i < params.h; i += ${L}u) { xn[i] = hs[i] * inverse * scalar(${offset}u + i); }
  }
  workgroupBarrier();`;
  /** dot(row `o` of the [n, K] matrix at `offset`, the workgroup array `x`) with vec4 weight loads. */
  const dotRow = (offset: number, K: string, x: string, o: string) => `
    {
      let base = ${v4(offset)} + ${o} * ${K};
      for (var k = 0u; k < ${K}; k++) {
        let a = vec4<f32>(${x}[4u * k], ${x}[4u * k + 1u], ${x}[4u * k + 2u], ${x}[4u * k + 3u]);
        total += dot(a, w[base + k]);
      }
    }`;
  const headNorm = (offset: number | null) =>
    offset === null
      ? ''
      : `
      {
        var squares = 0.0;
        for (var i = 0u; i < params.d; i++) { let v = qkv[at + i]; squares += v * v; }
        let inverse = inverseSqrt(squares / f32(params.d) + params.eps);
        for (var i = 0u; i < params.d; i++) { qkv[at + i] = qkv[at + i] * inverse * scalar(${offset}u + i); }
      }`;
  const body = `
  let row = wid.x;
  let lane = lid.x;
  let pad = padding[row];
  let slot = params.slot;
  let position = min(select(0u, slot - pad, slot >= pad), params.positions - 1u);
  ${
    embed
      ? `let id = ids[row];
  let token = select(0u, u32(id), id >= 0 && u32(id) < params.vocab);
  for (var i = lane; i < params.h; i += ${L}u) { hs[i] = table[token * params.h + i]; }`
      : `for (var i = lane; i < params.h; i += ${L}u) { hs[i] = hidden[row * params.h + i]; }`
  }
  workgroupBarrier();
  ${norm(layout.inputNorm)}
  for (var o = lane; o < params.w; o += ${L}u) {
    var total = 0.0;${dotRow(layout.qkv, 'params.h4', 'xn', 'o')}
    ${layout.qkvBias === null ? '' : `total += scalar(${layout.qkvBias}u + o);`}
    qkv[o] = total;
  }
  workgroupBarrier();
  // q and k heads (k follow q in qkv): their norm (Qwen3), then rotary at the row's position.
  for (var item = lane; item < (params.nh + params.nkv); item += ${L}u) {
    let at = item * params.d;
    if (item < params.nh) {${headNorm(layout.qNorm)}
    } else {${headNorm(layout.kNorm)}
    }
    for (var i = 0u; i < params.half; i++) {
      let c = cos_table[position * params.half + i];
      let s = sin_table[position * params.half + i];
      let x1 = qkv[at + i];
      let x2 = qkv[at + i + params.half];
      qkv[at + i] = x1 * c - x2 * s;
      qkv[at + i + params.half] = x2 * c + x1 * s;
    }
  }
  workgroupBarrier();
  let cache_row = row * params.capacity;
  // The first key this row sees: its padding, or the sliding window's start.
  var first = pad;
  if (params.window > 0u && slot + 1u > params.window) { first = max(pad, slot + 1u - params.window); }
  for (var e = lane; e < (params.nkv * params.d); e += ${L}u) {
    let at = (cache_row + slot) * (params.nkv * params.d) + e;
    key_cache[at] = qkv[(params.nh * params.d) + e];
    value_cache[at] = qkv[((params.nh + params.nkv) * params.d) + e];
  }
  // Attention: ${S} lane(s) per head split the cached keys, each with its own online softmax.
  for (var item = lane; item < (params.nh * params.s); item += ${L}u) {
    let head = item / params.s;
    let split = item % params.s;
    let kv = head / params.group;
    let q_at = head * params.d;
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<f32, ${D}>;
    for (var i = 0u; i < params.d; i++) { acc[i] = 0.0; }
    for (var j = first + split; j < slot; j += params.s) {
      let at = ((cache_row + j) * params.nkv + kv) * params.d;
      var dot_qk = 0.0;
      for (var i = 0u; i < params.d; i++) { dot_qk += qkv[q_at + i] * key_cache[at + i]; }
      let score = dot_qk * params.scale;
      let top = max(m, score);
      let correction = exp(m - top);
      let weight = exp(score - top);
      l = l * correction + weight;
      m = top;
      for (var i = 0u; i < params.d; i++) { acc[i] = acc[i] * correction + weight * value_cache[at + i]; }
    }
    if (split == 0u) {
      let k_at = (params.nh * params.d) + kv * params.d;
      let v_at = ((params.nh + params.nkv) * params.d) + kv * params.d;
      var dot_qk = 0.0;
      for (var i = 0u; i < params.d; i++) { dot_qk += qkv[q_at + i] * qkv[k_at + i]; }
      let score = dot_qk * params.scale;
      let top = max(m, score);
      let correction = exp(m - top);
      let weight = exp(score - top);
      l = l * correction + weight;
      m = top;
      for (var i = 0u; i < params.d; i++) { acc[i] = acc[i] * correction + weight * qkv[v_at + i]; }
    }
    split_max[item] = m;
    split_sum[item] = l;
    for (var i = 0u; i < params.d; i++) { split_acc[item * params.d + i] = acc[i]; }
  }
  workgroupBarrier();
  for (var e = lane; e < (params.nh * params.d); e += ${L}u) {
    let first = (e / params.d) * params.s;
    let i = e % params.d;
    var top = -3.0e38;
    for (var s = 0u; s < params.s; s++) { top = max(top, split_max[first + s]); }
    var total = 0.0;
    var value = 0.0;
    for (var s = 0u; s < params.s; s++) {
      let factor = exp(split_max[first + s] - top);
      total += split_sum[first + s] * factor;
      value += split_acc[(first + s) * params.d + i] * factor;
    }
    att[e] = value / total;
  }
  workgroupBarrier();
  for (var o = lane; o < params.h; o += ${L}u) {
    var total = 0.0;${dotRow(layout.o, 'params.a4', 'att', 'o')}
    hs[o] += total;
  }
  workgroupBarrier();
  ${norm(layout.postNorm)}
  for (var o = lane; o < params.i; o += ${L}u) {
    var total = 0.0;${dotRow(layout.gate, 'params.h4', 'xn', 'o')}
    let gate = total;
    total = 0.0;${dotRow(layout.up, 'params.h4', 'xn', 'o')}
    act[o] = gate / (1.0 + exp(-gate)) * total;
  }
  workgroupBarrier();
  for (var o = lane; o < params.h; o += ${L}u) {
    var total = 0.0;${dotRow(layout.down, 'params.i4', 'act', 'o')}
    hs[o] += total;
    hidden[row * params.h + o] = hs[o];
  }${mode === '-' ? '' : headSource(mode === 'head+argmax', L)}`;
  return kernelSource({
    storage: [
      { name: 'w', type: 'vec4<f32>', access: 'read' },
      ...(embed
        ? [
            { name: 'table', type: 'f32' as const, access: 'read' as const },
            ...(mode === 'head+argmax'
              ? []
              : [{ name: 'ids', type: 'i32' as const, access: 'read' as const }]),
          ]
        : []),
      { name: 'cos_table', type: 'f32', access: 'read' },
      { name: 'sin_table', type: 'f32', access: 'read' },
      { name: 'padding', type: 'u32', access: 'read' },
      { name: 'key_cache', type: 'f32', access: 'read_write' },
      { name: 'value_cache', type: 'f32', access: 'read_write' },
      { name: 'hidden', type: 'f32', access: 'read_write' },
      ...(mode === '-'
        ? []
        : [
            { name: 'final_norm', type: 'f32' as const, access: 'read' as const },
            { name: 'head', type: 'vec4<f32>' as const, access: 'read' as const },
            { name: 'logits', type: 'f32' as const, access: 'read_write' as const },
          ]),
      ...(mode === 'head+argmax'
        ? [
            { name: 'ids', type: 'i32' as const, access: 'read_write' as const },
            { name: 'tokens', type: 'i32' as const, access: 'read_write' as const },
          ]
        : []),
    ],
    uniforms: FIELDS,
    workgroupSize: L,
    helpers: [
      `var<workgroup> hs: array<f32, ${H}>;`,
      `var<workgroup> xn: array<f32, ${H}>;`,
      `var<workgroup> qkv: array<f32, ${W}>;`,
      `var<workgroup> att: array<f32, ${NH * D}>;`,
      `var<workgroup> act: array<f32, ${I}>;`,
      `var<workgroup> split_max: array<f32, ${NH * S}>;`,
      `var<workgroup> split_sum: array<f32, ${NH * S}>;`,
      `var<workgroup> split_acc: array<f32, ${NH * S * D}>;`,
      'fn scalar(i: u32) -> f32 { return w[i / 4u][i % 4u]; }',
      ...(mode === 'head+argmax'
        ? [`var<workgroup> best_value: array<f32, ${L}>;`, `var<workgroup> best_index: array<u32, ${L}>;`]
        : []),
    ].join('\n'),
    body,
  });
}

/**
 * The final norm and the head after the last layer (hs holds the row's residual stream), and the
 * greedy choice: each lane keeps the first largest non-NaN logit of its outputs, then lane 0 takes
 * the largest value, the lowest index among ties (decodeArgmax's rule).
 */
function headSource(argmax: boolean, L: number): string {
  const track = `
    if (best_at == 0xffffffffu) { if (total == total) { best = total; best_at = v; } }
    else if (total > best) { best = total; best_at = v; }`;
  const choose = `
  best_value[lane] = best;
  best_index[lane] = best_at;
  workgroupBarrier();
  if (lane == 0u) {
    var value = 0.0;
    var index = 0xffffffffu;
    for (var t = 0u; t < ${L}u; t++) {
      let other = best_index[t];
      let better = best_value[t] > value || (best_value[t] == value && other < index);
      if (other != 0xffffffffu && (index == 0xffffffffu || better)) {
        value = best_value[t];
        index = other;
      }
    }
    let chosen = select(i32(index), -1, index == 0xffffffffu);
    ids[row] = chosen;
    tokens[params.log_offset + row] = chosen;
  }`;
  return `
  workgroupBarrier();
  {
    var squares = 0.0;
    for (var i = 0u; i < params.h; i++) { let v = hs[i]; squares += v * v; }
    let inverse = inverseSqrt(squares / f32(params.h) + params.head_eps);
    for (var i = lane; i < params.h; i += ${L}u) { xn[i] = hs[i] * inverse * final_norm[i]; }
  }
  workgroupBarrier();
  var best = 0.0;
  var best_at = 0xffffffffu;
  for (var v = lane; v < params.head_vocab; v += ${L}u) {
    var total = 0.0;
    let base = v * params.h4;
    for (var k = 0u; k < params.h4; k++) {
      let a = vec4<f32>(xn[4u * k], xn[4u * k + 1u], xn[4u * k + 2u], xn[4u * k + 3u]);
      total += dot(a, head[base + k]);
    }
    logits[row * params.head_vocab + v] = total;${argmax ? track : ''}
  }${argmax ? choose : ''}`;
}
