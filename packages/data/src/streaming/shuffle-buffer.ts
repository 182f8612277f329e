/**
 * The shuffle buffer of `streaming: true` (Hugging Face datasets' `IterableDataset.shuffle(buffer_size)`,
 * which LLaMA-Factory uses): the first `size` items fill the buffer; then each new item takes the place
 * of a randomly drawn one, which is given out. When the input ends, what is left is shuffled and given
 * out in order. At most `size` items are held. Its state (the generator and which items it holds) is
 * small and exact, so a saved position restores the same order.
 */
import { SeededRandom } from '../random.js';

/** Where an item came from: its dataset and its record index there (enough to read it again). */
export type ItemReference = readonly [source: number, index: number];

/** A buffer's saved state: the generator, the items it held by reference, and whether it was draining. */
export interface ShuffleBufferState {
  random: number;
  items: ItemReference[];
  draining: boolean;
}

/** One change to the buffer since the last mark, enough to undo it. */
type Change<T> =
  | { kind: 'push' }
  | { kind: 'swap'; index: number; previous: T }
  | { kind: 'pop'; item: T }
  | { kind: 'shuffle'; previous: T[] };

export class ShuffleBuffer<T extends { reference: ItemReference }> {
  private items: T[] = [];
  private random: SeededRandom;
  private draining = false;
  // The state at the last mark(), kept as an undo journal: a mark costs nothing per held item, and
  // only a saved position (a checkpoint) pays for rebuilding it.
  private marked = { random: 0, draining: false };
  private journal: Change<T>[] = [];
  /** The most items held at once (for tests and reports). */
  peak = 0;

  constructor(
    readonly size: number,
    seed: number,
  ) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`buffer_size must be >= 1, got ${size}`);
    this.random = new SeededRandom(seed);
  }

  /** Items held now. */
  get length(): number {
    return this.items.length;
  }

  /**
   * Gives out the next item: pulls from `upstream` until the buffer is full, then swaps the new item
   * for a drawn one. Returns null once the input has ended and the buffer is empty.
   */
  async next(upstream: () => Promise<T | null>): Promise<T | null> {
    while (!this.draining) {
      const item = await upstream();
      if (item === null) {
        this.journal.push({ kind: 'shuffle', previous: this.items.slice() });
        this.random.shuffle(this.items);
        this.draining = true;
        break;
      }
      if (this.items.length < this.size) {
        this.journal.push({ kind: 'push' });
        this.items.push(item);
        this.peak = Math.max(this.peak, this.items.length);
        continue;
      }
      const drawn = this.random.nextInt(this.size);
      const out = this.items[drawn];
      this.journal.push({ kind: 'swap', index: drawn, previous: out });
      this.items[drawn] = item;
      return out;
    }
    // Draining: the shuffled rest, from the end (pop is O(1)).
    const out = this.items.pop() ?? null;
    if (out !== null) this.journal.push({ kind: 'pop', item: out });
    return out;
  }

  /** Remembers the state now; `stateAtMark()` gives it back later. */
  mark(): void {
    this.marked = { random: this.random.state, draining: this.draining };
    this.journal = [];
  }

  /** The state at the last `mark()` (the changes since undone on a copy). */
  stateAtMark(): ShuffleBufferState {
    let items = this.items.slice();
    for (let index = this.journal.length - 1; index >= 0; index--) {
      const change = this.journal[index];
      if (change.kind === 'push') items.pop();
      else if (change.kind === 'swap') items[change.index] = change.previous;
      else if (change.kind === 'pop') items.push(change.item);
      else items = change.previous.slice();
    }
    return {
      random: this.marked.random,
      items: items.map((item) => [item.reference[0], item.reference[1]]),
      draining: this.marked.draining,
    };
  }

  /** The state to save. */
  state(): ShuffleBufferState {
    return {
      random: this.random.state,
      items: this.items.map((item) => [item.reference[0], item.reference[1]]),
      draining: this.draining,
    };
  }

  /** Restores a saved state; `items` are the saved references read again, in the same order. */
  restore(state: ShuffleBufferState, items: T[]): void {
    this.random = SeededRandom.fromState(state.random);
    this.items = items;
    this.draining = state.draining;
    this.peak = Math.max(this.peak, items.length);
    this.mark();
  }
}
