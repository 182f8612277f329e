/** Sizes of an attention problem: q [batch, seqQ, headsQ, headDim], k and v [batch, seqK, headsKV, headDim]. */
export interface AttentionDims {
  batch: number;
  seqQ: number;
  seqK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
}

export interface AttentionReferenceOptions {
  causal?: boolean;
  scale?: number;
  /** [batch, seqK], nonzero = attend. */
  paddingMask?: ArrayLike<number>;
  /** Default seqK - seqQ. */
  queryOffset?: number;
  /** Sliding window: query i sees only keys j > queryOffset + i - window. Default none. */
  window?: number;
  /** paddingMask holds segment ids: query i sees key j only when mask[j] != 0 and mask[j] = mask[queryOffset + i]. */
  segments?: boolean;
  /** Logit soft-capping: s becomes cap * tanh(s / cap). Default none. */
  softcap?: number;
}

/**
 * One query row of attention in float64, from materialised scores: s_j = scale q . k_j for
 * every visible key j (j <= queryOffset + i when causal, j > queryOffset + i - window with a
 * sliding window, mask[batch, j] != 0), p = softmax(s),
 * output = sum_j p_j v_j, logsumexp = log sum_j exp(s_j). A row with no visible key gives zeros
 * and logsumexp +Infinity.
 */
export function attentionRowReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionDims,
  options: AttentionReferenceOptions,
  row: { batch: number; query: number; head: number },
): { output: Float64Array; logsumexp: number } {
  const { seqQ, seqK, headsQ, headsKV, headDim } = dims;
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const offset = options.queryOffset ?? seqK - seqQ;
  const causal = options.causal ?? true;
  const { batch: b, query: i, head: h } = row;
  const kvHead = Math.floor(h / (headsQ / headsKV));
  const qAt = ((b * seqQ + i) * headsQ + h) * headDim;
  const scores: number[] = [];
  const keys: number[] = [];
  for (let j = 0; j < seqK; j++) {
    if (causal && j > offset + i) continue;
    if (options.window !== undefined && j <= offset + i - options.window) continue;
    if (options.paddingMask && options.paddingMask[b * seqK + j] === 0) continue;
    if (
      options.segments &&
      options.paddingMask?.[b * seqK + j] !== options.paddingMask?.[b * seqK + offset + i]
    )
      continue;
    const kAt = ((b * seqK + j) * headsKV + kvHead) * headDim;
    let dot = 0;
    for (let c = 0; c < headDim; c++) dot += q[qAt + c] * k[kAt + c];
    const score = dot * scale;
    scores.push(options.softcap ? options.softcap * Math.tanh(score / options.softcap) : score);
    keys.push(kAt);
  }
  const output = new Float64Array(headDim);
  if (scores.length === 0) return { output, logsumexp: Number.POSITIVE_INFINITY };
  const max = Math.max(...scores);
  let sum = 0;
  for (const s of scores) sum += Math.exp(s - max);
  scores.forEach((s, n) => {
    const p = Math.exp(s - max) / sum;
    for (let c = 0; c < headDim; c++) output[c] += p * v[keys[n] + c];
  });
  return { output, logsumexp: max + Math.log(sum) };
}

/**
 * Scaled-dot-product attention in float64 with grouped-query heads (query head h reads kv head
 * floor(h / (headsQ / headsKV))). Returns output [batch, seqQ, headsQ, headDim] and logsumexp
 * [batch, headsQ, seqQ]; see attentionRowReference for the meaning of each row.
 */
export function attentionReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionDims,
  options: AttentionReferenceOptions = {},
): { output: Float64Array; logsumexp: Float64Array } {
  const { batch, seqQ, headsQ, headDim } = dims;
  const output = new Float64Array(batch * seqQ * headsQ * headDim);
  const logsumexp = new Float64Array(batch * headsQ * seqQ);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < seqQ; i++) {
      for (let h = 0; h < headsQ; h++) {
        const row = attentionRowReference(q, k, v, dims, options, { batch: b, query: i, head: h });
        output.set(row.output, ((b * seqQ + i) * headsQ + h) * headDim);
        logsumexp[(b * headsQ + h) * seqQ + i] = row.logsumexp;
      }
    }
  }
  return { output, logsumexp };
}
