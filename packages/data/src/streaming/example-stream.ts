/**
 * `streaming: true` as LLaMA-Factory runs it: datasets are read lazily, mixed (`mix_strategy`,
 * `interleave_probs`), shuffled through a `buffer_size` buffer, then templated and tokenized on the
 * fly, a few rows at a time. Memory holds the buffer, not the datasets. The stream never ends: after
 * the last row of a pass it starts the next (with its own shuffle), so the trainer's `max_steps`
 * decides the length, as in LLaMA-Factory. `position()` is small and exact (records consumed per
 * dataset, generator states, the buffer's items by reference); `seek()` puts a new stream there.
 */
import type { Example, PretrainExample } from '../formats/types.js';
import { DataConfigError, DataError, type DataIssue } from '../issues.js';
import type { MixStrategy } from '../mixing/mix.js';
import { encodeAll, type PrepareOptions } from '../pipeline/prepare.js';
import { PromptEncoder } from '../prompt/prompt-encoder.js';
import { SeededRandom } from '../random.js';
import type { DatasetReport, ValidationReport } from '../report/validation-report.js';
import type { ChatTemplate } from '../templates/types.js';
import { type EncodedExample, encodePretrain } from '../tokenize/encode-examples.js';
import { ShuffleBuffer, type ShuffleBufferState } from './shuffle-buffer.js';
import { SourceReader, type StreamItem } from './source-reader.js';

/** Options of `streamExamples`: those of `prepareDataset` without what needs every row. */
export interface StreamOptions
  extends Omit<PrepareOptions, 'maxSamples' | 'valSize' | 'strict' | 'previewCount' | 'neatPacking'> {
  /** The shuffle buffer (LLaMA-Factory's `buffer_size`). Default 16384. */
  bufferSize?: number;
  /**
   * Rows of each pass held out for evaluation (LLaMA-Factory takes the first `val_size` rows of the
   * shuffled stream; an integer). They are read by `validation()` and skipped by `next()`.
   */
  valSize?: number;
  /** Rows encoded together (pt packs documents, KTO pairs answers inside a group). Default 1000 for pt and kto, else 1. */
  groupSize?: number;
  /** Every rejected row, with file, row and field, as it is met (rows read again on a resume are not repeated). */
  onIssue?: (issue: DataIssue) => void;
}

/** Where a stream stands; JSON, saved in checkpoints. */
export interface StreamPosition {
  format: 'webtune-stream-position';
  version: 1;
  /** Passes over the data completed. */
  epoch: number;
  /** Rows given out in this pass (held-out validation rows included). */
  emitted: number;
  /** Rows of the group being given out that were already given. */
  fromGroup: number;
  /** The settings that decide the order; a resume under others is refused. */
  settings: StreamSettings;
  /** The state just before that group was drawn from the buffer. */
  before: {
    sources: { position: number; passes: number }[];
    mixer: { random: number; turn: number; exhausted: boolean[]; ended: boolean };
    buffer: ShuffleBufferState;
  };
}

/** What decides a stream's order, by LLaMA-Factory's key names. */
export interface StreamSettings {
  buffer_size: number;
  mix_strategy: MixStrategy;
  interleave_probs: number[] | null;
  seed: number;
  val_size: number;
  group_size: number;
}

/** A dataset stream: `next()` gives encoded rows for ever; see the module comment. */
export class ExampleStream {
  /** The template rows are rendered with (null for pt). */
  readonly template: ChatTemplate | null;
  private readonly readers: SourceReader[];
  private buffer!: ShuffleBuffer<StreamItem>;
  private random!: SeededRandom;
  private turn = 0;
  private exhausted: boolean[] = [];
  private ended = false;
  private epoch = 0;
  private emitted = 0;
  private group: EncodedExample[] = [];
  private fromGroup = 0;
  /** The sources' and mixer's state before the current group (the buffer's is its mark). */
  private before!: Omit<StreamPosition['before'], 'buffer'>;
  private readonly issues: DataIssue[] = [];
  private readonly strategy: MixStrategy;
  private readonly probabilities: number[] | undefined;
  private readonly groupSize: number;

  private constructor(
    private readonly options: StreamOptions,
    readers: SourceReader[],
  ) {
    this.readers = readers;
    this.strategy = options.mixStrategy ?? 'concat';
    this.probabilities = checkProbabilities(this.strategy, options.interleaveProbs, readers.length);
    this.groupSize = options.groupSize ?? (options.stage === 'pt' || options.stage === 'kto' ? 1000 : 1);
    this.template =
      options.stage === 'pt'
        ? null
        : new PromptEncoder(options.tokenizer, {
            template: options.template,
            enableThinking: options.enableThinking,
            defaultSystem: options.defaultSystem,
            toolFormat: options.toolFormat,
          }).template;
  }

  /** Opens the datasets of `options` (the files are read as rows are asked for). */
  static async open(options: StreamOptions): Promise<ExampleStream> {
    if (options.datasets.length === 0) {
      throw new DataError({
        severity: 'error',
        file: '(options)',
        field: 'datasets',
        expected: 'at least one dataset',
        got: 'none',
      });
    }
    if (options.stage === 'sft' && options.packing) {
      throw new DataConfigError(
        'packing',
        'sft packing chooses its packs among all examples (greedy knapsack); it cannot run under streaming',
      );
    }
    if (options.valSize !== undefined && !Number.isInteger(options.valSize)) {
      throw new DataConfigError(
        'val_size',
        `streaming holds out a number of rows: val_size must be an integer, got ${options.valSize}`,
      );
    }
    const onIssue = (issue: DataIssue) => stream.issue(issue);
    const readers: SourceReader[] = [];
    for (const [index, reference] of options.datasets.entries())
      readers.push(await SourceReader.create(index, reference, options, onIssue));
    const stream = new ExampleStream(options, readers);
    await stream.startEpoch(0);
    return stream;
  }

  /** The datasets' counts so far. */
  get datasets(): DatasetReport[] {
    return this.readers.map((reader) => reader.report);
  }

  /** Rejected rows met so far that no `onIssue` took (at most 1000 are kept). */
  get rejected(): readonly DataIssue[] {
    return this.issues;
  }

  /** The most items the shuffle buffer held at once. */
  get bufferPeak(): number {
    return this.buffer.peak;
  }

  /** The held-out rows: the first `valSize` rows of the first pass (read by a second, fresh stream). */
  async validation(): Promise<EncodedExample[]> {
    const count = this.options.valSize ?? 0;
    if (count === 0) return [];
    const fresh = await ExampleStream.open({ ...this.options, valSize: 0, onIssue: () => {} });
    const rows: EncodedExample[] = [];
    try {
      while (rows.length < count) {
        const row = await fresh.nextRow();
        if (fresh.epoch !== 0) break;
        rows.push(row);
      }
    } finally {
      await fresh.close();
    }
    return rows;
  }

  /** The next training row (held-out rows are skipped). */
  async next(): Promise<EncodedExample> {
    for (;;) {
      const row = await this.nextRow();
      // The first valSize rows of every pass are the held-out ones (LLaMA-Factory's skip(val_size)).
      if (this.emitted <= (this.options.valSize ?? 0)) continue;
      return row;
    }
  }

  /** Where the stream stands (after the last row given). */
  position(): StreamPosition {
    return {
      format: 'webtune-stream-position',
      version: 1,
      epoch: this.epoch,
      emitted: this.emitted,
      fromGroup: this.fromGroup,
      settings: this.settings(),
      before: { ...structuredClone(this.before), buffer: this.buffer.stateAtMark() },
    };
  }

  private settings(): StreamSettings {
    return {
      buffer_size: this.options.bufferSize ?? 16384,
      mix_strategy: this.strategy,
      interleave_probs: this.probabilities ?? null,
      seed: this.options.seed ?? 42,
      val_size: this.options.valSize ?? 0,
      group_size: this.groupSize,
    };
  }

  /** Moves to a saved position: the datasets are read up to it again (silently), the buffer refilled. */
  async seek(position: StreamPosition): Promise<void> {
    if (
      position?.format !== 'webtune-stream-position' ||
      position.before.sources.length !== this.readers.length
    ) {
      throw new DataConfigError(
        'resume_from_checkpoint',
        `the checkpoint's stream position does not fit these ${this.readers.length} dataset(s)`,
      );
    }
    const saved = position.settings ?? {};
    const current = this.settings();
    const changed = (Object.keys(current) as (keyof StreamSettings)[])
      .filter((key) => JSON.stringify(saved[key]) !== JSON.stringify(current[key]))
      .map((key) => `${key} ${JSON.stringify(saved[key])} -> ${JSON.stringify(current[key])}`);
    if (changed.length > 0) {
      throw new DataConfigError(
        'resume_from_checkpoint',
        `the checkpoint's stream was read with other settings (${changed.join(', ')}); resuming would not repeat it`,
      );
    }
    const { before } = position;
    this.epoch = position.epoch;
    this.random = SeededRandom.fromState(before.mixer.random);
    this.turn = before.mixer.turn;
    this.exhausted = [...before.mixer.exhausted];
    this.ended = before.mixer.ended;
    for (const [index, reader] of this.readers.entries()) {
      reader.passes = before.sources[index].passes;
      await reader.start(before.sources[index].position);
    }
    const wanted = before.buffer.items;
    const found = await Promise.all(
      this.readers.map((reader, index) =>
        reader.collect(new Set(wanted.filter(([source]) => source === index).map(([, row]) => row))),
      ),
    );
    const items = wanted.map(([source, row]) => {
      const item = found[source].get(row);
      if (!item) {
        throw new DataConfigError(
          'resume_from_checkpoint',
          `row ${row} of dataset ${this.readers[source].name} is no longer in its file; the data changed since the checkpoint`,
        );
      }
      return item;
    });
    this.buffer = new ShuffleBuffer(this.options.bufferSize ?? 16384, 0);
    this.buffer.restore(before.buffer, items);
    this.snapshot();
    this.group = [];
    this.fromGroup = 0;
    this.emitted = position.emitted - position.fromGroup;
    if (position.fromGroup > 0) {
      await this.drawGroup();
      this.fromGroup = position.fromGroup;
      this.emitted = position.emitted;
    }
  }

  /** Closes the open files. */
  async close(): Promise<void> {
    for (const reader of this.readers) await reader.close();
  }

  private issue(issue: DataIssue): void {
    if (this.options.onIssue) this.options.onIssue(issue);
    else if (this.issues.length < 1000) this.issues.push(issue);
  }

  /** The next row of the stream, held-out rows included; a new pass starts after the last. */
  private async nextRow(): Promise<EncodedExample> {
    for (let emptyGroups = 0; ; ) {
      if (this.fromGroup < this.group.length) {
        this.emitted++;
        return this.group[this.fromGroup++];
      }
      const drew = await this.drawGroup();
      if (drew === 'pass-ended') {
        if (this.emitted === 0) {
          throw new DataError({
            severity: 'error',
            file: this.readers.map((reader) => reader.report.file).join(', '),
            field: '(dataset)',
            expected: 'at least one valid row',
            got: 'a whole pass over the data without one',
            detail: this.issues[0]
              ? `first problem: ${this.issues[0].field}: ${this.issues[0].expected}`
              : undefined,
          });
        }
        const heldOut = this.options.valSize ?? 0;
        if (heldOut > 0 && this.emitted <= heldOut) {
          throw new DataConfigError(
            'val_size',
            `val_size ${heldOut} holds out every row of the data (${this.emitted} per pass); lower it`,
          );
        }
        await this.startEpoch(this.epoch + 1);
      } else if (this.group.length === 0 && ++emptyGroups > 1_000_000) {
        throw new Error('stream: a million groups in a row gave no row');
      }
    }
  }

  /** Draws and encodes the next group from the buffer; 'pass-ended' when the pass has no item left. */
  private async drawGroup(): Promise<'drawn' | 'pass-ended'> {
    this.snapshot();
    const items: StreamItem[] = [];
    while (items.length < this.groupSize) {
      const item = await this.buffer.next(() => this.mixed());
      if (item === null) break;
      items.push(item);
    }
    this.group = [];
    this.fromGroup = 0;
    if (items.length === 0) return 'pass-ended';
    this.group = this.encode(items.map((item) => item.example));
    return 'drawn';
  }

  private encode(examples: Example[]): EncodedExample[] {
    const { options } = this;
    if (options.stage === 'pt') {
      return encodePretrain(examples as PretrainExample[], {
        tokenizer: options.tokenizer,
        cutoffLen: options.cutoffLen ?? 2048,
        packing: options.packing ?? true,
      }).blocks;
    }
    // The in-memory path's encoder; its rejections are passed on, its warnings dropped.
    const scratch: ValidationReport = {
      stage: options.stage,
      datasets: this.datasets,
      rejected: [],
      warnings: [],
      preview: [],
    };
    const rows = encodeAll(
      examples,
      {
        template: this.template!,
        tokenizer: options.tokenizer,
        cutoffLen: options.cutoffLen ?? 2048,
        trainOnPrompt: options.trainOnPrompt,
        maskHistory: options.maskHistory,
      },
      { ...options, strict: false },
      scratch,
    );
    for (const issue of scratch.rejected) this.issue(issue);
    return rows;
  }

  /** The next item of the mix (LLaMA-Factory's mix_strategy), or null when this pass is over. */
  private async mixed(): Promise<StreamItem | null> {
    if (this.ended) return null;
    const count = this.readers.length;
    if (this.strategy === 'concat' || count === 1) {
      while (this.turn < count) {
        const item = await this.readers[this.turn].take();
        if (item) return item;
        this.turn++;
      }
      this.ended = true;
      return null;
    }
    const pick = this.probabilities ? this.random.pickWeighted(this.probabilities) : this.turn++ % count;
    const reader = this.readers[pick];
    const item = await reader.take();
    if (item === null) {
      throw new DataError({
        severity: 'error',
        dataset: reader.name,
        file: reader.report.file,
        field: '(dataset)',
        expected: 'at least one valid row to interleave',
        got: 'none',
      });
    }
    if (reader.exhausted) {
      this.exhausted[pick] = true;
      if (this.strategy === 'interleave_under' || this.exhausted.every(Boolean)) this.ended = true;
      else {
        // interleave_over: start the dataset again.
        reader.passes++;
        await reader.start(0);
      }
    }
    return item;
  }

  /** Records the state before the next group (what `position()` saves). */
  private snapshot(): void {
    this.before = {
      sources: this.readers.map((reader) => ({ position: reader.position, passes: reader.passes })),
      mixer: {
        random: this.random.state,
        turn: this.turn,
        exhausted: [...this.exhausted],
        ended: this.ended,
      },
    };
    this.buffer.mark();
  }

  private async startEpoch(epoch: number): Promise<void> {
    this.epoch = epoch;
    this.emitted = 0;
    this.group = [];
    this.fromGroup = 0;
    const seed = this.options.seed ?? 42;
    // Pass 0 mixes as the in-memory path does (seed itself); later passes draw anew.
    this.random = new SeededRandom(epoch === 0 ? seed : (seed + Math.imul(epoch, 0x9e3779b1)) >>> 0);
    this.buffer = new ShuffleBuffer(this.options.bufferSize ?? 16384, (seed ^ 0x5bd1e995) + epoch);
    this.turn = 0;
    this.ended = false;
    this.exhausted = this.readers.map(
      (_, index) => this.probabilities !== undefined && this.probabilities[index] === 0,
    );
    for (const reader of this.readers) {
      reader.passes = 0;
      await reader.start(0);
    }
    this.snapshot();
  }
}

/** Opens a dataset stream (see `ExampleStream`). */
export function streamExamples(options: StreamOptions): Promise<ExampleStream> {
  return ExampleStream.open(options);
}

function checkProbabilities(
  strategy: MixStrategy,
  probabilities: readonly number[] | undefined,
  count: number,
): number[] | undefined {
  if (strategy !== 'concat' && strategy !== 'interleave_under' && strategy !== 'interleave_over')
    throw new DataConfigError(
      'mix_strategy',
      `unknown strategy "${strategy}" (concat, interleave_under, interleave_over)`,
    );
  if (probabilities === undefined || strategy === 'concat' || count === 1) return undefined;
  if (probabilities.length !== count)
    throw new DataConfigError(
      'interleave_probs',
      `${probabilities.length} probabilities for ${count} datasets`,
    );
  const sum = probabilities.reduce((total, value) => total + value, 0);
  if (probabilities.some((value) => !(value >= 0)) || Math.abs(sum - 1) > 1e-6)
    throw new DataConfigError(
      'interleave_probs',
      `probabilities must be >= 0 and sum to 1, got ${probabilities.join(', ')}`,
    );
  return [...probabilities];
}
