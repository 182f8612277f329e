/**
 * Float64 references of the fused decode kernels, written the plain way (norm, then each product,
 * then the epilogue), for their tests.
 */

/** rows x [rows, K], optional RMSNorm (weight, eps), weights [n, K]: the products, row-major [rows, n]. */
export function normMatvecReference(
  x: ArrayLike<number>,
  rows: number,
  K: number,
  norm: { weight: ArrayLike<number>; eps: number } | null,
  weight: ArrayLike<number>,
  n: number,
): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let inverse = 1;
    if (norm) {
      let squares = 0;
      for (let i = 0; i < K; i++) squares += x[r * K + i] ** 2;
      inverse = 1 / Math.sqrt(squares / K + norm.eps);
    }
    for (let o = 0; o < n; o++) {
      let sum = 0;
      for (let i = 0; i < K; i++) {
        const a = x[r * K + i] * (norm ? inverse * norm.weight[i] : 1);
        sum += a * weight[o * K + i];
      }
      out[r * n + o] = sum;
    }
  }
  return out;
}

export interface DecodeAttentionCase {
  rows: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  slot: number;
  padding: readonly number[];
  scale: number;
  /** [rows, (heads + 2 kvHeads) headDim] */
  qkv: ArrayLike<number>;
  /** [positions, headDim / 2] */
  cos: ArrayLike<number>;
  sin: ArrayLike<number>;
  /** [rows, capacity, kvHeads, headDim] before the step */
  keys: ArrayLike<number>;
  values: ArrayLike<number>;
  qkNorm?: { q: ArrayLike<number>; k: ArrayLike<number>; eps: number } | null;
  /** Sliding window: the query at position p sees keys p - window < j <= p (0 or absent: none). */
  window?: number;
  /** Logit soft-capping: each score s becomes cap tanh(s / cap) (0 or absent: none). */
  softcap?: number;
}

/**
 * One decode step of attention: q/k norm, rotate-half rotary at position slot - padding, the new
 * key and value written at the slot, softmax over the keys padding..slot. Returns the output
 * [rows, heads headDim] and the caches after the write.
 */
export function decodeAttentionReference(c: DecodeAttentionCase): {
  out: Float64Array;
  keys: Float64Array;
  values: Float64Array;
} {
  const { rows, heads, kvHeads, headDim: D, capacity, slot } = c;
  const width = (heads + 2 * kvHeads) * D;
  const half = D / 2;
  const keys = Float64Array.from(c.keys);
  const values = Float64Array.from(c.values);
  const out = new Float64Array(rows * heads * D);
  const normed = (v: number[], weight: ArrayLike<number> | undefined, eps: number) => {
    if (!weight) return v;
    const inverse = 1 / Math.sqrt(v.reduce((s, x) => s + x * x, 0) / D + eps);
    return v.map((x, i) => x * inverse * weight[i]);
  };
  const rotate = (v: number[], position: number) =>
    v.map((x, i) => {
      const j = i % half;
      const cos = c.cos[position * half + j];
      const sin = c.sin[position * half + j];
      return i < half ? x * cos - v[i + half] * sin : x * cos + v[i - half] * sin;
    });
  const at = (row: number, key: number, kv: number) => ((row * capacity + key) * kvHeads + kv) * D;
  for (let row = 0; row < rows; row++) {
    const position = Math.max(0, slot - c.padding[row]);
    const slice = (start: number) => Array.from({ length: D }, (_, i) => c.qkv[row * width + start + i]);
    for (let kv = 0; kv < kvHeads; kv++) {
      const k = rotate(normed(slice(heads * D + kv * D), c.qkNorm?.k, c.qkNorm?.eps ?? 0), position);
      const v = slice((heads + kvHeads) * D + kv * D);
      keys.set(k, at(row, slot, kv));
      values.set(v, at(row, slot, kv));
    }
    for (let head = 0; head < heads; head++) {
      const kv = Math.floor(head / (heads / kvHeads));
      const q = rotate(normed(slice(head * D), c.qkNorm?.q, c.qkNorm?.eps ?? 0), position);
      const scores: number[] = [];
      const first = c.window ? Math.max(c.padding[row], slot + 1 - c.window) : c.padding[row];
      for (let key = first; key <= slot; key++) {
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[i] * keys[at(row, key, kv) + i];
        const score = dot * c.scale;
        scores.push(c.softcap ? c.softcap * Math.tanh(score / c.softcap) : score);
      }
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let i = 0; i < D; i++) {
        let sum = 0;
        weights.forEach((w, t) => {
          sum += w * values[at(row, first + t, kv) + i];
        });
        out[row * heads * D + head * D + i] = sum / total;
      }
    }
  }
  return { out, keys, values };
}

export interface SampleReferenceOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

/**
 * The host sampler's choice for one row, in float64: penalty on the `seen` ids, greedy at
 * temperature 0, else temperature, top-k (ties kept), softmax, top-p (sorted by probability, then
 * index), min-p, and the draw walked in index order. -1 for a row holding NaN.
 */
export function sampleReference(
  row: ArrayLike<number>,
  options: SampleReferenceOptions,
  draw: number,
  seen: ReadonlySet<number>,
): number {
  const logits = Float32Array.from(row);
  if (logits.some((value) => Number.isNaN(value))) return -1;
  for (const id of seen) {
    const value = logits[id];
    logits[id] = value < 0 ? value * options.repetitionPenalty : value / options.repetitionPenalty;
  }
  const argmax = () => logits.reduce((best, value, i) => (value > logits[best] ? i : best), 0);
  if (!(options.temperature > 0)) return argmax();
  const vocab = logits.length;
  const scores = Float64Array.from(logits, (value) => value / options.temperature);
  if (options.topK > 0 && options.topK < vocab) {
    const kth = Float64Array.from(scores).sort()[vocab - options.topK];
    for (let i = 0; i < vocab; i++) if (scores[i] < kth) scores[i] = Number.NEGATIVE_INFINITY;
  }
  const max = Math.max(...scores);
  let p = Float64Array.from(scores, (s) => (s === Number.NEGATIVE_INFINITY ? 0 : Math.exp(s - max)));
  const normalise = () => {
    const total = p.reduce((a, b) => a + b, 0);
    p = p.map((value) => value / total);
  };
  normalise();
  if (options.topP < 1) {
    const order = [...p.keys()].filter((i) => p[i] > 0).sort((a, b) => p[b] - p[a] || a - b);
    let cumulative = 0;
    let keep = 0;
    while (keep < order.length) {
      cumulative += p[order[keep]];
      keep++;
      if (cumulative >= options.topP) break;
    }
    for (const i of order.slice(keep)) p[i] = 0;
    normalise();
  }
  if (options.minP > 0) {
    const floor = options.minP * Math.max(...p);
    p = p.map((value) => (value < floor ? 0 : value));
    normalise();
  }
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < vocab; i++) {
    if (p[i] === 0) continue;
    cumulative += p[i];
    last = i;
    if (draw < cumulative) return i;
  }
  return last >= 0 ? last : argmax();
}

export interface DecodeLayerCase {
  rows: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  capacity: number;
  slot: number;
  padding: readonly number[];
  scale: number;
  eps: number;
  window?: number;
  /** [rows, hidden] */
  x: ArrayLike<number>;
  inputNorm: ArrayLike<number>;
  /** q, k and v stacked [(heads + 2 kvHeads) headDim, hidden], and their biases. */
  qkv: ArrayLike<number>;
  qkvBias: ArrayLike<number> | null;
  qkNorm: { q: ArrayLike<number>; k: ArrayLike<number> } | null;
  o: ArrayLike<number>;
  postNorm: ArrayLike<number>;
  gate: ArrayLike<number>;
  up: ArrayLike<number>;
  down: ArrayLike<number>;
  cos: ArrayLike<number>;
  sin: ArrayLike<number>;
  keys: ArrayLike<number>;
  values: ArrayLike<number>;
}

/** One decoder layer of a decode step, the plain way: the residual stream after it and the caches. */
export function decodeLayerReference(c: DecodeLayerCase): {
  hidden: Float64Array;
  keys: Float64Array;
  values: Float64Array;
} {
  const { rows, hidden: H, intermediate: I, heads, kvHeads, headDim: D, eps } = c;
  const width = (heads + 2 * kvHeads) * D;
  const qkv = normMatvecReference(c.x, rows, H, { weight: c.inputNorm, eps }, c.qkv, width);
  if (c.qkvBias) for (let i = 0; i < qkv.length; i++) qkv[i] += c.qkvBias[i % width];
  const attention = decodeAttentionReference({
    ...c,
    qkv,
    qkNorm: c.qkNorm ? { ...c.qkNorm, eps } : null,
  });
  const hidden = Float64Array.from(c.x);
  const o = normMatvecReference(attention.out, rows, heads * D, null, c.o, H);
  for (let i = 0; i < hidden.length; i++) hidden[i] += o[i];
  const gate = normMatvecReference(hidden, rows, H, { weight: c.postNorm, eps }, c.gate, I);
  const up = normMatvecReference(hidden, rows, H, { weight: c.postNorm, eps }, c.up, I);
  const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
  const down = normMatvecReference(act, rows, I, null, c.down, H);
  for (let i = 0; i < hidden.length; i++) hidden[i] += down[i];
  return { hidden, keys: attention.keys, values: attention.values };
}
