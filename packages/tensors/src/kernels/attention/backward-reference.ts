export interface AttentionShape {
  batch: number;
  /** Query rows per sequence. */
  queries: number;
  /** Key rows per sequence. */
  keys: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export interface AttentionBackwardReferenceOptions {
  /** Default true. */
  causal?: boolean;
  /** Position of query 0 among the keys; default keys - queries. */
  queryOffset?: number;
  scale?: number;
  /** [batch, keys]: nonzero = attend. */
  paddingMask?: ArrayLike<number> | null;
  /** Sliding window: query i sees only keys j > queryOffset + i - window. Default none. */
  window?: number;
  /** paddingMask holds segment ids: query i sees key j only when mask[j] != 0 and mask[j] = mask[queryOffset + i]. */
  segments?: boolean;
  /** Logit soft-capping: s_ij = cap tanh(scale q_i . k_j / cap), and ds_ij takes its slope. */
  softcap?: number;
}

/**
 * Gradients of attention in float64 from the saved output O and row logsumexp L
 * ([batch, heads, queries]), as flash attention's backward computes them: with s_ij = scale q_i k_j
 * (masked: causal keys j > queryOffset + i, keys j <= queryOffset + i - window outside a
 * sliding window, padded keys), p_ij = exp(s_ij - L_i),
 * D_i = dO_i . O_i, dp_ij = dO_i . v_j, ds_ij = p_ij (dp_ij - D_i):
 *   dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i,  dv_j = sum_i p_ij dO_i,
 * with dk and dv summed over the query heads that share a key/value head (head h reads kv head
 * floor(h / (heads / kvHeads))). Layouts: q, O, dO [batch, queries, heads, headDim]; k, v
 * [batch, keys, kvHeads, headDim].
 */
export function attentionBackwardReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  output: ArrayLike<number>,
  logsumexp: ArrayLike<number>,
  grad: ArrayLike<number>,
  shape: AttentionShape,
  options: AttentionBackwardReferenceOptions = {},
): { q: Float64Array; k: Float64Array; v: Float64Array } {
  const { batch, queries, keys, heads, kvHeads, headDim } = shape;
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const group = heads / kvHeads;
  const causal = options.causal ?? true;
  const queryOffset = options.queryOffset ?? keys - queries;
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const qAt = (b: number, i: number, h: number) => ((b * queries + i) * heads + h) * headDim;
  const kAt = (b: number, j: number, h: number) => ((b * keys + j) * kvHeads + h) * headDim;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      for (let i = 0; i < queries; i++) {
        const lse = logsumexp[(b * heads + h) * queries + i];
        if (!Number.isFinite(lse)) continue; // a query that sees no key
        const qi = qAt(b, i, h);
        let delta = 0;
        for (let d = 0; d < headDim; d++) delta += grad[qi + d] * output[qi + d];
        for (let j = 0; j < keys; j++) {
          if (causal && j > queryOffset + i) continue;
          if (options.window !== undefined && j <= queryOffset + i - options.window) continue;
          if (options.paddingMask && !options.paddingMask[b * keys + j]) continue;
          const mask = options.paddingMask;
          if (options.segments && mask && mask[b * keys + j] !== mask[b * keys + queryOffset + i]) continue;
          const kj = kAt(b, j, kvh);
          let s = 0;
          let dp = 0;
          for (let d = 0; d < headDim; d++) {
            s += q[qi + d] * k[kj + d];
            dp += grad[qi + d] * v[kj + d];
          }
          const cap = options.softcap;
          const capped = cap ? cap * Math.tanh((scale * s) / cap) : scale * s;
          const p = Math.exp(capped - lse);
          const ds = p * (dp - delta) * (cap ? 1 - (capped / cap) ** 2 : 1);
          for (let d = 0; d < headDim; d++) {
            dq[qi + d] += scale * ds * k[kj + d];
            dk[kj + d] += scale * ds * q[qi + d];
            dv[kj + d] += p * grad[qi + d];
          }
        }
      }
    }
  }
  return { q: dq, k: dk, v: dv };
}
