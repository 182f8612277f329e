import type { RotaryStyle } from './rotary.js';

/**
 * Rotary embedding in float64 on x [batch, seq, heads, headDim] with tables [seq, rotaryDim/2]
 * or [batch, seq, rotaryDim/2]. 'half' pairs dimensions i and i + rotaryDim/2 (HF rotate_half:
 * x * cat(cos, cos) + rotate_half(x) * cat(sin, sin)); 'interleaved' pairs 2i and 2i + 1 (Meta's
 * complex multiplication (x_2i + i x_2i+1) * e^(i theta)). Dimensions past rotaryDim pass through.
 */
export function rotaryReference(
  x: ArrayLike<number>,
  shape: readonly number[],
  cos: ArrayLike<number>,
  sin: ArrayLike<number>,
  options: { style: RotaryStyle; rotaryDim?: number; batchedTables?: boolean },
): Float64Array {
  const [batch, seq, heads, headDim] = shape;
  const rotaryDim = options.rotaryDim ?? headDim;
  const pairs = rotaryDim / 2;
  const out = Float64Array.from(x);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      const tableRow = ((options.batchedTables ? b * seq : 0) + s) * pairs;
      for (let h = 0; h < heads; h++) {
        const base = ((b * seq + s) * heads + h) * headDim;
        for (let i = 0; i < pairs; i++) {
          const first = base + (options.style === 'half' ? i : 2 * i);
          const second = base + (options.style === 'half' ? i + pairs : 2 * i + 1);
          const c = cos[tableRow + i];
          const sn = sin[tableRow + i];
          out[first] = x[first] * c - x[second] * sn;
          out[second] = x[second] * c + x[first] * sn;
        }
      }
    }
  }
  return out;
}
