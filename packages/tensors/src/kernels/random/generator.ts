import { TensorError } from '../../device/errors.js';

/**
 * The counter-based random generator behind rand, randn and dropout, written twice with the same
 * 32-bit integer arithmetic: in TypeScript (Math.imul) and in WGSL (u32 wraps). The value of an
 * element depends only on (seed, counter, lane), where counter = offset + element index (mod
 * 2^32), so results are the same on every device, for any chunking or workgroup layout, and in
 * the reference.
 *
 * Choice: four rounds of a 32-bit integer finaliser (xor-shift / multiply; the constants are
 * those of MurmurHash3's fmix32, which is in the public domain), each keyed by its own round
 * key. Philox 4x32 would be the textbook choice but needs 32x32 -> 64-bit products, which WGSL
 * lacks (emulating them costs more than these rounds). Every round is a bijection of the 32-bit
 * state, so for one seed and lane distinct counters never collide; the round keys are derived
 * from all 53 bits of the seed through the same finaliser, so nearby seeds give unrelated
 * streams (two seeds are not just shifted copies of each other, which a single key xor would
 * give). The generator is for machine learning (dropout masks, initialisation), not cryptography.
 */

/** The four round keys and the counter base of one launch. */
export interface GeneratorKeys {
  key0: number;
  key1: number;
  key2: number;
  key3: number;
}

/** MurmurHash3's 32-bit finaliser (a bijection of 32-bit integers). */
export function mix32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Checks a seed or offset: a non-negative safe integer. */
export function checkCounterArgument(what: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TensorError(`${what}: ${name} must be a non-negative integer below 2^53, got ${value}`);
  }
}

/** Round keys of a seed (a non-negative integer below 2^53). */
export function generatorKeys(seed: number): GeneratorKeys {
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  const key0 = mix32(low ^ mix32(high ^ 0x3c6ef372));
  const key1 = mix32(key0 ^ 0x9e3779b9);
  const key2 = mix32(key1 ^ 0xbb67ae85);
  const key3 = mix32(key2 ^ 0xa54ff53a);
  return { key0, key1, key2, key3 };
}

/** Multiplier that separates the lanes (two uniforms per counter for Box-Muller). */
const LANE_STEP = 0x9e3779b9;

/** 32 random bits for (keys, counter, lane); the TypeScript twin of `random_bits` in WGSL. */
export function randomBits(keys: GeneratorKeys, counter: number, lane = 0): number {
  let x = mix32((counter >>> 0) ^ keys.key0);
  x = mix32(x ^ keys.key1 ^ Math.imul(lane, LANE_STEP));
  x = mix32((x + keys.key2) >>> 0);
  return mix32(x ^ keys.key3);
}

/** A uniform float in [0, 1) from 32 bits: the top 24 bits times 2^-24 (exact in f32). */
export function unitFromBits(bits: number): number {
  return (bits >>> 8) * 2 ** -24;
}

/** The integer threshold of keep = (bits >> 8) >= threshold, i.e. u >= p exactly, and the kept scale. */
export function dropoutParameters(p: number): { threshold: number; scale: number } {
  if (!(p >= 0 && p <= 1)) throw new TensorError(`dropout: p must be in [0, 1], got ${p}`);
  return { threshold: Math.ceil(p * 2 ** 24), scale: p < 1 ? 1 / (1 - p) : 0 };
}

/** WGSL of the generator; reads the round keys from params.key0..key3. */
export const GENERATOR_WGSL = `
fn mix32(value: u32) -> u32 {
  var x = value;
  x = x ^ (x >> 16u);
  x = x * 0x85ebca6bu;
  x = x ^ (x >> 13u);
  x = x * 0xc2b2ae35u;
  x = x ^ (x >> 16u);
  return x;
}
fn random_bits(counter: u32, lane: u32) -> u32 {
  var x = mix32(counter ^ params.key0);
  x = mix32(x ^ params.key1 ^ (lane * ${LANE_STEP}u));
  x = mix32(x + params.key2);
  return mix32(x ^ params.key3);
}
fn unit_from_bits(bits: u32) -> f32 { return f32(bits >> 8u) * 5.9604644775390625e-8; }`;
