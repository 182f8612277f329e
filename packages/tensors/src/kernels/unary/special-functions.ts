/**
 * Float64 special functions that JavaScript's Math lacks: erf, erfc and the scaled erfcx. They
 * define the references of erf and gelu-erf and are the targets the WGSL approximations are
 * fitted to (math.ts). Accuracy is near 1e-14 relative, far below what an f32 kernel can show.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const ONE_OVER_SQRT_PI = 1 / Math.sqrt(Math.PI);

/** erf(z) by its Maclaurin series; accurate for |z| < 2.5 (terms stay below ~50). */
function erfSeries(z: number): number {
  const square = z * z;
  let term = z; // z^(2n+1) (-1)^n / n!
  let sum = z;
  for (let n = 1; n < 200; n++) {
    term *= -square / n;
    const contribution = term / (2 * n + 1);
    sum += contribution;
    if (Math.abs(contribution) < 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * sum;
}

/**
 * exp(z^2) erfc(z) for z >= 2 by Laplace's continued fraction
 * erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...)))),
 * evaluated from the bottom; 100 levels reach double precision for z >= 2.
 */
function erfcxContinuedFraction(z: number): number {
  let denominator = z;
  for (let k = 100; k >= 1; k--) denominator = z + k / 2 / denominator;
  return ONE_OVER_SQRT_PI / denominator;
}

/** The error function, in float64. */
export function erf(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  const a = Math.abs(z);
  if (a < 2) return erfSeries(z);
  return Math.sign(z) * (1 - Math.exp(-a * a) * erfcxContinuedFraction(a));
}

/** The complementary error function 1 - erf(z), accurate in relative terms for large z. */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  if (z < 2) return 1 - erf(z);
  if (z > 27) return 0;
  return Math.exp(-z * z) * erfcxContinuedFraction(z);
}

/** The scaled complementary error function exp(z^2) erfc(z), for z >= 0. */
export function erfcx(z: number): number {
  if (z < 2) return Math.exp(z * z) * (1 - erfSeries(z));
  return erfcxContinuedFraction(z);
}
