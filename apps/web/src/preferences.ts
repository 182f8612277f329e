/** One blind A/B vote that picked a winner: the prompt with the preferred and the other answer. */
export interface PreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Which model wrote the chosen answer (revealed after the vote). */
  chosenModel: 'base' | 'tuned';
  createdAt: string;
}

const STORAGE_KEY = 'webtune.preference-pairs';

/**
 * The preference pairs collected from A/B votes, kept in localStorage so they survive a reload,
 * and written as a LLaMA-Factory preference dataset (alpaca columns with `chosen` and `rejected`,
 * `ranking: true`) that a DPO run reads.
 */
export class PreferenceStore {
  private pairs: PreferencePair[];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly storage: Storage | null = globalThis.localStorage ?? null) {
    this.pairs = this.load();
  }

  get all(): readonly PreferencePair[] {
    return this.pairs;
  }

  add(pair: PreferencePair): void {
    this.pairs = [...this.pairs, pair];
    this.save();
  }

  clear(): void {
    this.pairs = [];
    this.save();
  }

  subscribe(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** The pairs as a dataset file: [{ instruction, input, chosen, rejected }]. */
  toDatasetJson(): string {
    const rows = this.pairs.map((pair) => ({
      instruction: pair.prompt,
      input: '',
      chosen: pair.chosen,
      rejected: pair.rejected,
    }));
    return `${JSON.stringify(rows, null, 2)}\n`;
  }

  private load(): PreferencePair[] {
    try {
      const text = this.storage?.getItem(STORAGE_KEY);
      const parsed = text ? (JSON.parse(text) as unknown) : [];
      return Array.isArray(parsed) ? (parsed as PreferencePair[]) : [];
    } catch {
      return [];
    }
  }

  private save(): void {
    this.storage?.setItem(STORAGE_KEY, JSON.stringify(this.pairs));
    for (const listener of this.listeners) listener();
  }
}
