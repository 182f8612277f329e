/**
 * A blind A/B session for people: pairs are shown in a shuffled order, each with the two answers
 * on shuffled sides labelled A and B, so neither position nor order gives the model away. The
 * person votes A, B or tie; `unblind()` maps the votes back to the models. The state is plain
 * JSON (`toJSON` / `BlindSession.restore`) so the terminal and the web app can save a session and
 * resume it.
 */
import { SeededRandom } from '@webtune/data';
import { EvaluationError } from '../errors.js';
import type { ComparisonSet, PairOutcome } from './comparison.js';
import { summarizeOutcomes, type WinRateOptions, type WinRateSummary } from './win-rate.js';

/** A vote: the answer shown as A, the one shown as B, or neither. */
export type BlindVote = 'A' | 'B' | 'tie';

/** What a person sees for one item: no model names. */
export interface BlindItem {
  /** Position in the session (0-based). */
  index: number;
  prompt: ComparisonSet['pairs'][number]['prompt'];
  a: string;
  b: string;
  vote?: BlindVote;
}

/** The saved state of a session. */
export interface BlindSessionState {
  seed: number;
  /** order[i]: index into `set.pairs` of the i-th item shown. */
  order: number[];
  /** swapped[i]: item i shows models[1]'s answer as A. */
  swapped: boolean[];
  votes: (BlindVote | null)[];
}

/** One unblinded item. */
export interface UnblindedItem {
  index: number;
  pairId: number;
  /** Model shown as A and as B. */
  shownAs: { A: string; B: string };
  vote: BlindVote;
  winner: 0 | 1 | null;
}

/** The session's outcome. */
export interface BlindResult {
  items: UnblindedItem[];
  outcomes: PairOutcome[];
  summary: WinRateSummary;
  /** Items shown but not voted on. */
  skipped: number;
}

export class BlindSession {
  private constructor(
    readonly set: ComparisonSet,
    private readonly state: BlindSessionState,
  ) {}

  /** A new session over `set`, shuffled with `seed` (default: from the clock). */
  static create(set: ComparisonSet, options: { seed?: number } = {}): BlindSession {
    if (set.pairs.length === 0) throw new EvaluationError('a blind session needs at least one pair');
    const seed = options.seed ?? Date.now() % 2 ** 31;
    const random = new SeededRandom(seed);
    const order = set.pairs.map((_, index) => index);
    for (let i = order.length - 1; i > 0; i--) {
      const j = random.nextInt(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const swapped = order.map(() => random.next() < 0.5);
    return new BlindSession(set, { seed, order, swapped, votes: order.map(() => null) });
  }

  /** A session saved with `toJSON`, over the same set. */
  static restore(set: ComparisonSet, state: BlindSessionState): BlindSession {
    const n = set.pairs.length;
    const valid =
      state.order.length === n &&
      state.swapped.length === n &&
      state.votes.length === n &&
      [...state.order].sort((a, b) => a - b).every((value, index) => value === index);
    if (!valid) throw new EvaluationError(`the saved session does not fit this comparison set of ${n} pairs`);
    return new BlindSession(set, structuredClone(state));
  }

  get length(): number {
    return this.state.order.length;
  }

  /** Items voted on so far. */
  get voted(): number {
    return this.state.votes.filter((vote) => vote !== null).length;
  }

  get complete(): boolean {
    return this.voted === this.length;
  }

  /** The first item without a vote, or null when every item has one. */
  next(): BlindItem | null {
    const index = this.state.votes.indexOf(null);
    return index < 0 ? null : this.item(index);
  }

  /** The item at a position, with its answers on their shown sides. */
  item(index: number): BlindItem {
    this.check(index);
    const pair = this.set.pairs[this.state.order[index]];
    const [first, second] = this.state.swapped[index] ? [pair.answers[1], pair.answers[0]] : pair.answers;
    const vote = this.state.votes[index];
    return { index, prompt: pair.prompt, a: first, b: second, ...(vote ? { vote } : {}) };
  }

  /** Records (or changes) the vote on an item. */
  vote(index: number, vote: BlindVote): void {
    this.check(index);
    if (vote !== 'A' && vote !== 'B' && vote !== 'tie')
      throw new EvaluationError(`a vote is A, B or tie, got ${JSON.stringify(vote)}`);
    this.state.votes[index] = vote;
  }

  /** Maps the votes back to the models and tallies them. Unvoted items are counted as skipped. */
  unblind(options: WinRateOptions = {}): BlindResult {
    const items: UnblindedItem[] = [];
    this.state.order.forEach((pairIndex, index) => {
      const vote = this.state.votes[index];
      if (vote === null) return;
      const swapped = this.state.swapped[index];
      const modelOfA: 0 | 1 = swapped ? 1 : 0;
      const winner = vote === 'tie' ? null : vote === 'A' ? modelOfA : ((1 - modelOfA) as 0 | 1);
      items.push({
        index,
        pairId: this.set.pairs[pairIndex].id,
        shownAs: { A: this.set.models[modelOfA], B: this.set.models[1 - modelOfA] },
        vote,
        winner,
      });
    });
    const outcomes = items.map((item) => ({ id: item.pairId, winner: item.winner }));
    return {
      items,
      outcomes,
      summary: summarizeOutcomes(this.set.models, outcomes, options),
      skipped: this.length - items.length,
    };
  }

  /** The state to save (contains the sides: keep it away from the voter). */
  toJSON(): BlindSessionState {
    return structuredClone(this.state);
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new EvaluationError(`item ${index} is outside the session (0..${this.length - 1})`);
    }
  }
}
