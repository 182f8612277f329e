import { ModelError } from '../errors.js';

/** How the next token is chosen from the logits. Defaults give greedy decoding. */
export interface SamplingOptions {
  /** 0 (default) picks the most likely token; above 0 divides the logits and samples. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties with the k-th are kept). 0 or absent: no limit. */
  topK?: number;
  /** Keep the most likely tokens whose probabilities add up to at least p (nucleus). 1: no limit. */
  topP?: number;
  /** Drop tokens whose probability is below minP x the top token's. 0: no limit. */
  minP?: number;
  /**
   * Above 1 discourages tokens already in the sequence (prompt and generated), as in
   * transformers: a positive logit is divided by it, a negative one multiplied.
   */
  repetitionPenalty?: number;
  /** Seed of the sampler; the same seed, model and prompt give the same tokens. */
  seed?: number;
}

/** Checks sampling options and throws a ModelError naming the bad one. */
export function validateSamplingOptions(options: SamplingOptions): void {
  const { temperature = 0, topK = 0, topP = 1, minP = 0, repetitionPenalty = 1 } = options;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new ModelError(`temperature must be 0 or a positive number, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0)
    throw new ModelError(`topK must be a non-negative integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new ModelError(`topP must be in (0, 1], got ${topP}`);
  if (!(minP >= 0 && minP <= 1)) throw new ModelError(`minP must be in [0, 1], got ${minP}`);
  if (!(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty)) {
    throw new ModelError(`repetitionPenalty must be a positive number, got ${repetitionPenalty}`);
  }
}

/** Whether the options reduce to taking the largest logit. */
export function isGreedy(options: SamplingOptions): boolean {
  return !options.temperature;
}

/** A small seeded generator (xoshiro128**) for sampling; uniform doubles in [0, 1). */
export class SeededRandom {
  private readonly state = new Uint32Array(4);

  constructor(seed: number = Math.floor(Math.random() * 2 ** 32)) {
    // splitmix32 spreads one seed over the four words of state.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.state[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.state.every((word) => word === 0)) this.state[0] = 1;
  }

  nextUint32(): number {
    const s = this.state;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A double in [0, 1) with 53 random bits. */
  next(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Index of the largest value (the first one on ties). */
export function argmaxOf(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Applies the repetition penalty in place: every token id in `seen` gets its logit divided by
 * the penalty when positive, multiplied when negative.
 */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    if (id < 0 || id >= logits.length) continue;
    const value = logits[id];
    logits[id] = value < 0 ? value * penalty : value / penalty;
  }
}

/**
 * The probability of every token after temperature, top-k, top-p and min-p (in that order, as
 * transformers applies them); filtered tokens get 0. Returns a Float64Array summing to 1.
 */
export function samplingDistribution(logits: ArrayLike<number>, options: SamplingOptions): Float64Array {
  const temperature = options.temperature || 1;
  const vocab = logits.length;
  const scores = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) scores[i] = logits[i] / temperature;
  const topK = options.topK ?? 0;
  if (topK > 0 && topK < vocab) {
    const kth = kthLargest(scores, topK);
    for (let i = 0; i < vocab; i++) if (scores[i] < kth) scores[i] = Number.NEGATIVE_INFINITY;
  }
  const probabilities = softmax(scores);
  const topP = options.topP ?? 1;
  if (topP < 1) {
    const order = candidates(probabilities).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
    let cumulative = 0;
    let keep = 0;
    // Keep the smallest prefix whose mass reaches topP (at least one token).
    while (keep < order.length) {
      cumulative += probabilities[order[keep]];
      keep++;
      if (cumulative >= topP) break;
    }
    for (let i = keep; i < order.length; i++) probabilities[order[i]] = 0;
    renormalise(probabilities);
  }
  const minP = options.minP ?? 0;
  if (minP > 0) {
    let top = 0;
    for (let i = 0; i < vocab; i++) top = Math.max(top, probabilities[i]);
    const floor = minP * top;
    for (let i = 0; i < vocab; i++) if (probabilities[i] < floor) probabilities[i] = 0;
    renormalise(probabilities);
  }
  return probabilities;
}

/**
 * Picks the next token from one row of logits: greedy when temperature is 0, else a draw from
 * `samplingDistribution`. `seen` holds the ids the repetition penalty applies to. The logits
 * array is modified by the penalty.
 */
export function sampleToken(
  logits: Float32Array,
  options: SamplingOptions,
  random: SeededRandom,
  seen: Iterable<number> = [],
): number {
  applyRepetitionPenalty(logits, seen, options.repetitionPenalty ?? 1);
  if (isGreedy(options)) return argmaxOf(logits);
  const probabilities = samplingDistribution(logits, options);
  const draw = random.next();
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < probabilities.length; i++) {
    if (probabilities[i] === 0) continue;
    cumulative += probabilities[i];
    last = i;
    if (draw < cumulative) return i;
  }
  return last >= 0 ? last : argmaxOf(logits);
}

function softmax(scores: Float64Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const s of scores) if (s > max) max = s;
  const out = new Float64Array(scores.length);
  let total = 0;
  for (let i = 0; i < scores.length; i++) {
    const value = scores[i] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(scores[i] - max);
    out[i] = value;
    total += value;
  }
  for (let i = 0; i < out.length; i++) out[i] /= total;
  return out;
}

function renormalise(probabilities: Float64Array): void {
  let total = 0;
  for (const p of probabilities) total += p;
  for (let i = 0; i < probabilities.length; i++) probabilities[i] /= total;
}

function candidates(probabilities: Float64Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < probabilities.length; i++) if (probabilities[i] > 0) out.push(i);
  return out;
}

function kthLargest(values: Float64Array, k: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[sorted.length - k];
}
