import { dropoutParameters, generatorKeys, randomBits, unitFromBits } from './generator.js';

/** The raw generator output for counters offset .. offset + count - 1. */
export function randomBitsReference(seed: number, offset: number, count: number): Uint32Array {
  const keys = generatorKeys(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = randomBits(keys, (offset + i) % 2 ** 32);
  return out;
}

/** rand in float64: low + (high - low) * u. */
export function uniformReference(
  seed: number,
  offset: number,
  count: number,
  low = 0,
  high = 1,
): Float64Array {
  const bits = randomBitsReference(seed, offset, count);
  return Float64Array.from(bits, (b) => low + (high - low) * unitFromBits(b));
}

/** randn in float64, from the same uniforms as the kernel (Box-Muller on counter pairs). */
export function normalReference(
  seed: number,
  offset: number,
  count: number,
  mean = 0,
  std = 1,
): Float64Array {
  const keys = generatorKeys(seed);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const position = (offset + i) % 2 ** 32;
    const pair = position >>> 1;
    const u1 = ((randomBits(keys, pair, 0) >>> 8) + 1) * 2 ** -24;
    const angle = Math.PI * (2 * unitFromBits(randomBits(keys, pair, 1)) - 1);
    const radius = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * radius * (position & 1 ? Math.sin(angle) : Math.cos(angle));
  }
  return out;
}

/** dropout in float64: the mask (1 / (1 - p) kept, 0 dropped) and x * mask. */
export function dropoutReference(
  x: ArrayLike<number>,
  p: number,
  seed: number,
  offset = 0,
): { output: Float64Array; mask: Float64Array } {
  const { threshold, scale } = dropoutParameters(p);
  const bits = randomBitsReference(seed, offset, x.length);
  const mask = Float64Array.from(bits, (b) => (b >>> 8 >= threshold ? scale : 0));
  return { output: Float64Array.from(mask, (m, i) => x[i] * m), mask };
}
