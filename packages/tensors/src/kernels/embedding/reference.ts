/**
 * Embedding lookup in float64: row ids[t] of table [vocab, dim] for every token t, a row of
 * zeros for ids outside [0, vocab).
 */
export function embeddingReference(
  table: ArrayLike<number>,
  vocab: number,
  dim: number,
  ids: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (id < 0 || id >= vocab) continue;
    for (let c = 0; c < dim; c++) out[t * dim + c] = table[id * dim + c];
  }
  return out;
}
