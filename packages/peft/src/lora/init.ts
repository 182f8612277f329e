import { SeededRandom } from '@webtune/nn';
import { PeftError } from '../errors.js';
import type { LoraInit } from './lora-config.js';
import { randomizedSvd, svd } from './svd.js';

/** Seeded host random numbers for initialisation: the same seed gives the same adapter everywhere. */
export class InitRandom {
  private readonly source: SeededRandom;
  private spare: number | null = null;

  constructor(seed: number) {
    this.source = new SeededRandom(seed);
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.source.next();
  }

  /** Standard normal (Box-Muller, two values per pair of uniforms). */
  normal(): number {
    if (this.spare !== null) {
      const value = this.spare;
      this.spare = null;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.source.next()));
    const angle = 2 * Math.PI * this.source.next();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }
}

/**
 * PyTorch's kaiming_uniform_(w, a = sqrt(5)) for a weight [rows, fanIn] (nn.Linear's default):
 * gain sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 / fanIn) = 1 / sqrt(fanIn).
 */
export function kaimingUniform(rows: number, fanIn: number, random: InitRandom): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  const values = new Float32Array(rows * fanIn);
  for (let i = 0; i < values.length; i++) values[i] = random.uniform(-bound, bound);
  return values;
}

/** N(0, std^2) values. */
export function normalValues(count: number, std: number, random: InitRandom): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = std * random.normal();
  return values;
}

/** Initial LoRA factors: A [r, in] and B [out, r], and for PiSSA the residual base weight [out, in]. */
export interface LoraFactors {
  a: Float32Array;
  b: Float32Array;
  residual?: Float32Array;
}

/** Whether an init reads the base weight (PiSSA). */
export function initNeedsWeight(init: LoraInit): boolean {
  return typeof init === 'string' && init.startsWith('pissa');
}

/**
 * A and B for one module as PEFT initialises them (peft/tuners/lora/layer.py):
 * true -> A Kaiming-uniform, B zero; 'gaussian' -> A ~ N(0, 1/r), B zero; false -> both as a
 * fresh nn.Linear (Kaiming-uniform, so the adapter is not a no-op); PiSSA -> `pissaFactors`.
 */
export function initialFactors(
  init: LoraInit,
  shape: { r: number; inFeatures: number; outFeatures: number; scaling: number },
  random: InitRandom,
  weight?: ArrayLike<number>,
): LoraFactors {
  const { r, inFeatures, outFeatures } = shape;
  if (init === true)
    return { a: kaimingUniform(r, inFeatures, random), b: new Float32Array(outFeatures * r) };
  if (init === 'gaussian') {
    return { a: normalValues(r * inFeatures, 1 / r, random), b: new Float32Array(outFeatures * r) };
  }
  if (init === false)
    return { a: kaimingUniform(r, inFeatures, random), b: kaimingUniform(outFeatures, r, random) };
  if (!weight) throw new PeftError(`LoRA init ${init} needs the base weight`);
  const iterations = init === 'pissa' ? null : Number(init.slice('pissa_niter_'.length));
  return pissaFactors(weight, outFeatures, inFeatures, r, shape.scaling, iterations, random);
}

/**
 * PiSSA (Meng et al., 2024) as PEFT computes it: W = U S Vt, S_r = S[:r] / scaling,
 * A = diag(sqrt(S_r)) Vt[:r], B = U[:, :r] diag(sqrt(S_r)), and the base weight becomes the
 * residual W - scaling B A, so the model's function is unchanged at the start while the adapter
 * holds the principal components. `iterations` null runs an exact SVD, else a randomized one.
 */
export function pissaFactors(
  weight: ArrayLike<number>,
  outFeatures: number,
  inFeatures: number,
  r: number,
  scaling: number,
  iterations: number | null,
  random: InitRandom,
): Required<LoraFactors> {
  if (r > Math.min(outFeatures, inFeatures)) {
    throw new PeftError(`PiSSA: rank ${r} exceeds min(out, in) = ${Math.min(outFeatures, inFeatures)}`);
  }
  const decomposition =
    iterations === null
      ? svd(weight, outFeatures, inFeatures)
      : randomizedSvd(weight, outFeatures, inFeatures, r, iterations, () => random.normal());
  const { u, s, vt, k } = decomposition;
  const a = new Float32Array(r * inFeatures);
  const b = new Float32Array(outFeatures * r);
  const root = new Float64Array(r);
  for (let j = 0; j < r; j++) root[j] = Math.sqrt(s[j] / scaling);
  for (let j = 0; j < r; j++)
    for (let c = 0; c < inFeatures; c++) a[j * inFeatures + c] = root[j] * vt[j * inFeatures + c];
  for (let i = 0; i < outFeatures; i++) for (let j = 0; j < r; j++) b[i * r + j] = u[i * k + j] * root[j];
  // Residual from the float32 factors, as PEFT subtracts scaling * B @ A of the stored factors.
  const residual = new Float32Array(outFeatures * inFeatures);
  for (let i = 0; i < outFeatures; i++) {
    for (let c = 0; c < inFeatures; c++) {
      let sum = 0;
      for (let j = 0; j < r; j++) sum += b[i * r + j] * a[j * inFeatures + c];
      residual[i * inFeatures + c] = weight[i * inFeatures + c] - scaling * sum;
    }
  }
  return { a, b, residual };
}
