import { erf, erfcx } from '../unary/special-functions.js';

/**
 * WGSL math helpers for the unary kernels, written once for a type placeholder so the same text
 * serves f32 and vec4<f32> (WGSL has no generics): `T` is the float type, `U` the matching u32
 * type. Every helper avoids the inputs that break naive formulas: exp never sees a large positive
 * argument, so nothing overflows to inf/inf = NaN.
 */

/** Chebyshev coefficients c_0..c_degree of f on [a, b], by interpolation at Chebyshev nodes. */
export function chebyshevCoefficients(
  f: (x: number) => number,
  a: number,
  b: number,
  degree: number,
): number[] {
  const count = degree + 1;
  const values: number[] = [];
  for (let k = 0; k < count; k++) {
    const node = Math.cos((Math.PI * (k + 0.5)) / count);
    values.push(f(((b - a) * node + a + b) / 2));
  }
  const coefficients: number[] = [];
  for (let j = 0; j < count; j++) {
    let sum = 0;
    for (let k = 0; k < count; k++) sum += values[k] * Math.cos((Math.PI * j * (k + 0.5)) / count);
    coefficients.push(((j === 0 ? 1 : 2) / count) * sum);
  }
  return coefficients;
}

/** Evaluates a Chebyshev series on [a, b] at x (Clenshaw), in float64: the TS twin of clenshawWgsl. */
export function chebyshevValue(coefficients: readonly number[], a: number, b: number, x: number): number {
  const s = (2 * x - a - b) / (b - a);
  let b1 = 0;
  let b2 = 0;
  for (let k = coefficients.length - 1; k >= 1; k--) {
    const b0 = coefficients[k] + 2 * s * b1 - b2;
    b2 = b1;
    b1 = b0;
  }
  return coefficients[0] + s * b1 - b2;
}

/** A float literal WGSL accepts (always with a point or an exponent). */
export function wgslFloat(value: number): string {
  const text = value.toPrecision(17);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** WGSL statements that leave the Chebyshev series of `coefficients` on [a, b] at `x` in `result`. */
function clenshawWgsl(
  result: string,
  x: string,
  coefficients: readonly number[],
  a: number,
  b: number,
): string {
  const lines = [
    `  let ${result}_s = (2.0 * ${x} - ${wgslFloat(a + b)}) * ${wgslFloat(1 / (b - a))};`,
    `  let ${result}_s2 = 2.0 * ${result}_s;`,
    `  var ${result}_b1 = T(${wgslFloat(coefficients[coefficients.length - 1])});`,
    `  var ${result}_b2 = T(0.0);`,
  ];
  for (let k = coefficients.length - 2; k >= 1; k--) {
    lines.push(
      `  { let b0 = ${wgslFloat(coefficients[k])} + ${result}_s2 * ${result}_b1 - ${result}_b2; ${result}_b2 = ${result}_b1; ${result}_b1 = b0; }`,
    );
  }
  lines.push(`  let ${result} = ${wgslFloat(coefficients[0])} + ${result}_s * ${result}_b1 - ${result}_b2;`);
  return lines.join('\n');
}

/**
 * erf and erfc in f32, about 1e-7 relative plus the error of the driver's exp (a few ulp):
 * - |z| < 1: erf(z) = z P(z^2), P the degree-6 Chebyshev interpolant of erf(sqrt t) / sqrt t on
 *   t in [0, 1] (interpolation error ~1e-9).
 * - |z| >= 1: erfc(|z|) = exp(-z^2) F(w) / (1 + 2|z|) with w = (|z| - 2) / (|z| + 2) in [-1/3, 1),
 *   F the degree-10 Chebyshev interpolant of erfcx(z) (1 + 2z), smooth and bounded up to z = inf
 *   (interpolation error ~2e-9). exp(-z^2) is computed as exp(-h^2) exp((h - z)(h + z)) with h
 *   holding z's top 12 bits, so h^2 is exact and no rounding of z^2 is amplified.
 * The coefficients are computed here, in float64, from the reference functions; the test of the
 * unary kernel checks the result against those references.
 */
const ERF_SMALL = chebyshevCoefficients(
  (t) => (t === 0 ? 2 / Math.sqrt(Math.PI) : erf(Math.sqrt(t)) / Math.sqrt(t)),
  0,
  1,
  6,
);
const ERFC_LARGE_FROM = -1 / 3;
const ERFC_LARGE = chebyshevCoefficients(
  (w) => {
    const z = (2 * (1 + w)) / (1 - w);
    return erfcx(z) * (1 + 2 * z);
  },
  ERFC_LARGE_FROM,
  1,
  10,
);

/** tanh(x) / x = sum of these times x^(2n), n = 0..7 (the Maclaurin series of tanh). */
const TANH_SERIES = [
  1,
  -1 / 3,
  2 / 15,
  -17 / 315,
  62 / 2835,
  -1382 / 155925,
  21844 / 6081075,
  -929569 / 638512875,
];

const HELPERS: Record<string, { needs: string[]; source: () => string }> = {
  sigmoid: {
    needs: [],
    // exp only sees -|x|; the smaller branch is e / (1 + e), exact in relative terms.
    source: () => `
fn webtune_sigmoid(x: T) -> T {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= T(0.0));
}`,
  },
  tanh: {
    needs: [],
    // Builtin tanh can return NaN for large |x| on some drivers (inf / inf); this never overflows.
    // Near 0, where (1 - e) / (1 + e) cancels, the Maclaurin series to x^15 (error < 1e-8 for
    // |x| < 0.5).
    source: () => `
fn webtune_tanh(x: T) -> T {
  let a = abs(x);
  let e = exp(-2.0 * a);
  let large = sign(x) * ((1.0 - e) / (1.0 + e));
  let s = x * x;
  var p = T(${wgslFloat(TANH_SERIES[TANH_SERIES.length - 1])});
${TANH_SERIES.slice(0, -1)
  .reverse()
  .map((c) => `  p = ${wgslFloat(c)} + s * p;`)
  .join('\n')}
  return select(large, x * p, a < T(0.5));
}`,
  },
  erf: {
    needs: [],
    source: () => `
fn webtune_erf_small(z: T) -> T {
  // erf(z) for |z| < 1.
  let t = z * z;
${clenshawWgsl('p', 't', ERF_SMALL, 0, 1)}
  return z * p;
}
fn webtune_erfc_large(a: T) -> T {
  // erfc(a) for a >= 1; a is clamped at 10, where erfc is below f32's smallest normal.
  let z = min(a, T(10.0));
  let w = (z - 2.0) / (z + 2.0);
${clenshawWgsl('f', 'w', ERFC_LARGE, ERFC_LARGE_FROM, 1)}
  let h = bitcast<T>(bitcast<U>(z) & U(0xfffff000u));
  return exp(-h * h) * exp((h - z) * (h + z)) * f / (1.0 + 2.0 * z);
}
fn webtune_erf(z: T) -> T {
  let a = abs(z);
  let large = sign(z) * (1.0 - webtune_erfc_large(max(a, T(1.0))));
  return select(large, webtune_erf_small(z), a < T(1.0));
}
fn webtune_erfc(z: T) -> T {
  let a = abs(z);
  let tail = webtune_erfc_large(max(a, T(1.0)));
  let large = select(2.0 - tail, tail, z >= T(0.0));
  return select(large, 1.0 - webtune_erf_small(z), a < T(1.0));
}`,
  },
};

/** Names of the helpers an expression uses (`webtune_<name>(`). */
function usedHelpers(expression: string): string[] {
  const names = new Set<string>();
  for (const match of expression.matchAll(/webtune_([a-z]+)\(/g)) {
    const base = match[1].startsWith('erf') ? 'erf' : match[1];
    if (HELPERS[base]) names.add(base);
  }
  const ordered: string[] = [];
  const visit = (name: string) => {
    if (ordered.includes(name)) return;
    for (const need of HELPERS[name].needs) visit(need);
    ordered.push(name);
  };
  for (const name of names) visit(name);
  return ordered;
}

/** Module-scope WGSL for the helpers `expression` calls, specialised to f32 or vec4<f32>. */
export function mathHelpers(expression: string, vector: boolean): string {
  const floatType = vector ? 'vec4<f32>' : 'f32';
  const uintType = vector ? 'vec4<u32>' : 'u32';
  return usedHelpers(expression)
    .map((name) => HELPERS[name].source().replace(/\bT\b/g, floatType).replace(/\bU\b/g, uintType))
    .join('\n');
}
