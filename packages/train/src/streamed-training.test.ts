import { type EncodedExample, memoryFileResolver, type StreamOptions, streamExamples } from '@webtune/data';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints, loadCheckpoint } from './checkpoint/checkpoint.js';
import { memoryStorage } from './checkpoint/training-storage.js';
import type { TrainingArguments } from './config/training-arguments.js';
import type { RowStream } from './data/row-stream.js';
import type { PreferenceRow, SupervisedRow } from './data/rows.js';
import type { TrainerEvent } from './events.js';
import { preferenceTask } from './tasks/preference-task.js';
import { supervisedTask } from './tasks/sft-task.js';
import { patternRows, toyModel } from './testing/toy-model.js';
import { SIMULATED_KILL } from './testing/toy-run.js';
import { train } from './trainer.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

// The toy model's 16-token vocabulary as the letters a..p, one token per letter.
const letters = 'abcdefghijklmnop';
const tokenizer = {
  encode: (text: string) => [...text].map((letter) => letters.indexOf(letter)),
  decode: (ids: number[]) => ids.map((id) => letters[id]).join(''),
  tokenToId: () => undefined,
  eosTokenId: null,
};
const textOf = (row: { inputIds: number[] }) => tokenizer.decode(row.inputIds);
/** patternRows as pretraining documents (one JSON line each), 7 tokens long. */
const documents = (count: number, offset = 0) =>
  patternRows(count + offset, 7)
    .slice(offset)
    .map((row) => `${JSON.stringify({ text: textOf(row) })}\n`)
    .join('');

const ARGS: TrainingArguments = {
  perDeviceTrainBatchSize: 2,
  gradientAccumulationSteps: 2,
  maxSteps: 8,
  learningRate: 0.05,
  lrSchedulerType: 'cosine',
  warmupSteps: 2,
  loggingSteps: 2,
  seed: 7,
};

/** A data stream as the CLI opens it, counting the rows the trainer pulled. */
async function openStream(files: Record<string, string>, extra: Partial<StreamOptions> = {}) {
  const stream = await streamExamples({
    stage: 'pt',
    datasets: Object.keys(files),
    files: memoryFileResolver(files),
    tokenizer,
    packing: false,
    groupSize: 1,
    seed: 7,
    ...extra,
  });
  const counted = {
    pulled: 0,
    next: async () => {
      counted.pulled++;
      return (await stream.next()) as Extract<EncodedExample, { kind: 'pretrain' }>;
    },
    position: () => stream.position(),
    seek: (position: unknown) => stream.seek(position as ReturnType<typeof stream.position>),
  };
  return counted;
}

async function runOn(
  rows: SupervisedRow[] | RowStream<SupervisedRow>,
  args: TrainingArguments,
  storage = memoryStorage(),
  stopAt?: (event: TrainerEvent) => boolean,
) {
  const model = toyModel(device);
  const pulledAtStep: number[] = [];
  try {
    const result = await train({
      model,
      task: supervisedTask(),
      train: rows,
      args,
      storage,
      onEvent: (event) => {
        if (event.type === 'step-end' && 'pulled' in rows)
          pulledAtStep.push((rows as { pulled: number }).pulled);
        if (stopAt?.(event)) throw new Error(SIMULATED_KILL);
      },
    });
    return { result, pulledAtStep, weights: Array.from(await model.parameters[4][1].toArray()) };
  } finally {
    model.dispose();
  }
}

describe('training on a stream (streaming: true)', () => {
  it('trains exactly as on the same rows held in memory, pulling one step of rows at a time', async () => {
    const files = { 'c.jsonl': documents(2000) };
    const stream = await openStream(files, { bufferSize: 1 });
    const streamed = await runOn(stream, ARGS);
    // 2 rows x 2 micro-batches per step: the trainer never pulled ahead of the step it ran.
    expect(streamed.pulledAtStep).toEqual([4, 8, 12, 16, 20, 24, 28, 32]);
    const held = await runOn(patternRows(32, 7), { ...ARGS, shuffle: false });
    expect(streamed.result.losses).toEqual(held.result.losses);
    expect(streamed.weights).toEqual(held.weights);
  });

  it('a streamed run killed after a checkpoint resumes at the saved stream position with identical losses', async () => {
    const files = { 'a.jsonl': documents(23), 'b.jsonl': documents(9, 23) };
    const extra: Partial<StreamOptions> = {
      bufferSize: 5,
      mixStrategy: 'interleave_over',
      interleaveProbs: [0.7, 0.3],
    };
    const args = { ...ARGS, maxSteps: 12, saveSteps: 4 };
    const reference = await runOn(await openStream(files, extra), args);
    const storage = memoryStorage();
    await expect(
      runOn(await openStream(files, extra), args, storage, (e) => e.type === 'step-end' && e.step === 6),
    ).rejects.toThrow(SIMULATED_KILL);
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-4']);
    const saved = (await loadCheckpoint(storage, 'checkpoint-4')).state.stream as {
      before: { sources: { position: number }[]; buffer: { items: unknown[] } };
    };
    // Rows consumed per dataset and the shuffle buffer's items by reference.
    expect(saved.before.sources).toHaveLength(2);
    expect(saved.before.buffer.items.length).toBeGreaterThan(0);
    const resumed = await runOn(
      await openStream(files, extra),
      { ...args, resumeFromCheckpoint: true },
      storage,
    );
    expect(resumed.result.losses).toEqual(reference.result.losses.slice(4));
    expect(resumed.weights).toEqual(reference.weights);
  });

  it('refuses a stream without max_steps, as LLaMA-Factory does', async () => {
    const stream = await openStream({ 'c.jsonl': documents(10) });
    await expect(runOn(stream, { ...ARGS, maxSteps: undefined, numTrainEpochs: 1 })).rejects.toThrow(
      /max_steps.*streaming/,
    );
  });

  it('refuses a precomputed DPO reference on a stream (its rows arrive during training)', async () => {
    const [chosen, rejected] = patternRows(2, 7);
    const pairs: RowStream<PreferenceRow> = {
      next: async () => ({ chosen, rejected }),
      position: () => null,
      seek: async () => {},
    };
    const model = toyModel(device);
    try {
      await expect(train({ model, task: preferenceTask(), train: pairs, args: ARGS })).rejects.toThrow(
        /precomputed reference needs every training row/,
      );
    } finally {
      model.dispose();
    }
  });
});
