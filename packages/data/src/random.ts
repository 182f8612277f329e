/**
 * A small seeded random number generator, so that sampling, interleaving and splits repeat exactly
 * for the same seed in Node and in browsers. Not for cryptography.
 */
export class SeededRandom {
  private state_: number;

  constructor(seed: number) {
    // Mix the seed so nearby seeds start far apart.
    this.state_ = SeededRandom.mix((seed >>> 0) ^ 0x9e3779b9);
  }

  /** The generator's whole state (one 32-bit integer), to save and restore a position exactly. */
  get state(): number {
    return this.state_;
  }

  /** A generator that continues exactly where the one whose `state` was saved stood. */
  static fromState(state: number): SeededRandom {
    const random = new SeededRandom(0);
    random.state_ = state >>> 0;
    return random;
  }

  /** A 32-bit unsigned integer. */
  nextUint32(): number {
    this.state_ = (this.state_ + 0x9e3779b9) >>> 0;
    return SeededRandom.mix(this.state_);
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const swap = items[i];
      items[i] = items[j];
      items[j] = swap;
    }
    return items;
  }

  /** A random permutation of 0..count-1. */
  permutation(count: number): number[] {
    return this.shuffle(Array.from({ length: count }, (_, index) => index));
  }

  /** Picks an index with the given probabilities (which sum to 1). */
  pickWeighted(probabilities: readonly number[]): number {
    const draw = this.next();
    let total = 0;
    for (let index = 0; index < probabilities.length; index++) {
      total += probabilities[index];
      if (draw < total) return index;
    }
    return probabilities.length - 1;
  }

  // A 32-bit integer hash with good avalanche (multiply-xorshift rounds).
  private static mix(value: number): number {
    let x = value >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x21f0aaad) >>> 0;
    x = Math.imul(x ^ (x >>> 15), 0x735a2d97) >>> 0;
    return (x ^ (x >>> 15)) >>> 0;
  }
}
