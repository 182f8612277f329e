export interface CloseOptions {
  /** Relative tolerance, against max(|expected|, scale). */
  rtol?: number;
  /** Absolute tolerance. */
  atol?: number;
  label?: string;
}

export function maxRelativeError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor = 1e-6,
): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor);
    if (e > worst || Number.isNaN(e)) worst = Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
  }
  return worst;
}

/**
 * Asserts elementwise |actual - expected| <= atol + rtol * |expected|, NaN only where NaN is
 * expected, and equal lengths. The error names the first bad index and the worst one.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  options: CloseOptions = {},
): void {
  const rtol = options.rtol ?? 1e-5;
  const atol = options.atol ?? 1e-6;
  const label = options.label ? `${options.label}: ` : '';
  if (actual.length !== expected.length) {
    throw new Error(`${label}length ${actual.length}, expected ${expected.length}`);
  }
  let bad = 0;
  let first = -1;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0)) {
      bad++;
      if (first < 0) first = i;
      if (!(excess <= worstExcess)) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (bad > 0) {
    throw new Error(
      `${label}${bad} of ${expected.length} values differ beyond atol ${atol} + rtol ${rtol}: ` +
        `first at [${first}] got ${actual[first]} expected ${expected[first]}; ` +
        `worst at [${worst}] got ${actual[worst]} expected ${expected[worst]}`,
    );
  }
}
