/**
 * Adds rows into target in float64, in token order: target[ids[i]] += rows[i] for every i whose
 * id is in [0, vocab); other ids are skipped. Returns a new array.
 */
export function scatterAddReference(
  target: ArrayLike<number>,
  vocab: number,
  dim: number,
  ids: ArrayLike<number>,
  rows: ArrayLike<number>,
): Float64Array {
  const out = Float64Array.from(target);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= vocab) continue;
    for (let c = 0; c < dim; c++) out[id * dim + c] += rows[i * dim + c];
  }
  return out;
}
