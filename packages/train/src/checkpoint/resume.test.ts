import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TrainingArguments } from '../config/training-arguments.js';
import type { TrainerEvent } from '../events.js';
import { patternRows } from '../testing/toy-model.js';
import { readTrainerLog, SIMULATED_KILL, trainToyModel } from '../testing/toy-run.js';
import {
  isCompleteCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  removeUnfinishedSaves,
  saveCheckpoint,
  TRAINER_STATE_FILE,
} from './checkpoint.js';
import { CheckpointError } from './checkpoint-error.js';
import { findResumeCheckpoint } from './resume.js';
import { memoryStorage, type TrainingStorage } from './training-storage.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const ROWS = patternRows(16, 7);
const ARGS: TrainingArguments = {
  perDeviceTrainBatchSize: 2,
  maxSteps: 12,
  learningRate: 0.05,
  loggingSteps: 1,
  saveSteps: 2,
  seed: 3,
};

const run = (args: TrainingArguments, storage: TrainingStorage, stopAt?: (e: TrainerEvent) => boolean) =>
  trainToyModel(device, { train: ROWS, args, storage, stopAt });

const logSteps = async (storage: TrainingStorage) =>
  (await readTrainerLog(storage)).map((row) => row.current_steps as number);

describe('resume_from_checkpoint', () => {
  it('true with no checkpoint refuses (CheckpointError) and leaves the log of a run killed before its first save', async () => {
    const storage = memoryStorage();
    await expect(
      run({ ...ARGS, saveSteps: 100 }, storage, (e) => e.type === 'step-end' && e.step === 4),
    ).rejects.toThrow(SIMULATED_KILL);
    expect(await logSteps(storage)).toEqual([1, 2, 3]);
    const refused = run({ ...ARGS, saveSteps: 100, resumeFromCheckpoint: true }, storage);
    await expect(refused).rejects.toBeInstanceOf(CheckpointError);
    await expect(refused).rejects.toThrow(/no valid checkpoint was found/);
    // Nothing was started over: the earlier rows are still there.
    expect(await logSteps(storage)).toEqual([1, 2, 3]);
    await expect(run({ ...ARGS, resumeFromCheckpoint: true }, memoryStorage())).rejects.toMatchObject({
      problem: 'none-found',
    });
  });

  it("true picks this run's newest checkpoint, never a later one of another run", async () => {
    // Run A saves checkpoints 2..12. Run B continues A's checkpoint-4 (by name) with another
    // learning rate, saves 6, and is killed during step 7.
    const storage = memoryStorage();
    await run(ARGS, storage);
    const runB = { ...ARGS, learningRate: 0.02 };
    const reference = await run(
      { ...runB, resumeFromCheckpoint: 'checkpoint-4' },
      (() => {
        const copy = memoryStorage();
        for (const [key, value] of storage.files) copy.files.set(key, value);
        return copy;
      })(),
    );
    await expect(
      run(
        { ...runB, resumeFromCheckpoint: 'checkpoint-4' },
        storage,
        (e) => e.type === 'step-end' && e.step === 7,
      ),
    ).rejects.toThrow(SIMULATED_KILL);
    const resumed = await run({ ...runB, resumeFromCheckpoint: true }, storage);
    expect(resumed.events[0]).toMatchObject({
      type: 'train-start',
      resumedFrom: 'checkpoint-6',
      firstStep: 7,
    });
    expect(resumed.result.losses).toEqual(reference.result.losses.slice(2));
    expect(resumed.weights).toEqual(reference.weights);
    expect(await logSteps(storage)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // Every checkpoint now is run B's.
    const identity = (await loadCheckpoint(storage, 'checkpoint-12')).state.runIdentity;
    expect((await loadCheckpoint(storage, 'checkpoint-8')).state.runIdentity).toBe(identity);
  });

  it("true refuses when every checkpoint is another run's; by name it continues one", async () => {
    const storage = memoryStorage();
    await run({ ...ARGS, maxSteps: 4 }, storage);
    const refused = run({ ...ARGS, maxSteps: 4, learningRate: 0.01, resumeFromCheckpoint: true }, storage);
    await expect(refused).rejects.toMatchObject({ problem: 'other-run' });
    await expect(refused).rejects.toThrow(/checkpoint-2, checkpoint-4 were saved with other settings/);
    const named = await run(
      { ...ARGS, maxSteps: 4, learningRate: 0.01, resumeFromCheckpoint: 'checkpoint-2' },
      storage,
    );
    expect(named.events[0]).toMatchObject({ resumedFrom: 'checkpoint-2', firstStep: 3 });
  });

  it('a missing folder names the output folder and what it holds; a broken trainer_state.json names the file', async () => {
    const storage = memoryStorage();
    await run({ ...ARGS, maxSteps: 4 }, storage);
    await expect(
      run({ ...ARGS, maxSteps: 4, resumeFromCheckpoint: 'checkpoint-999' }, storage),
    ).rejects.toThrow(
      'resume_from_checkpoint: "checkpoint-999" does not exist in the output folder (checkpoints there: checkpoint-2, checkpoint-4)',
    );
    await storage.writeFile(`checkpoint-4/${TRAINER_STATE_FILE}`, '{"format": "webtune-trai');
    await expect(
      run({ ...ARGS, maxSteps: 4, resumeFromCheckpoint: 'checkpoint-4' }, storage),
    ).rejects.toThrow(/^checkpoint-4\/trainer_state\.json: cannot be read as JSON/);
    await storage.writeFile(`checkpoint-4/${TRAINER_STATE_FILE}`, '{"x": 1}');
    await expect(loadCheckpoint(storage, 'checkpoint-4')).rejects.toThrow(
      'checkpoint-4/trainer_state.json is not a webtune trainer state',
    );
  });
});

describe('saving the same step again', () => {
  const contents = async (storage: TrainingStorage, step: number, value: number) => {
    const tensor = device.fromArray([value, value], [2], 'f32');
    const state = {
      format: 'webtune-trainer-state' as const,
      version: 1 as const,
      globalStep: step,
      epoch: 0,
      position: { epoch: 0, microBatch: step },
      plan: { seed: 1, trainRows: 4, microBatchSize: 1, accumulation: 1, totalSteps: 8 },
      logRows: step,
      elapsedMs: 0,
      diagnostics: null,
    };
    try {
      return await saveCheckpoint(storage, { state, parameters: [['w', tensor]], optimizer: [] }, null);
    } finally {
      tensor.dispose();
    }
  };

  it('a kill between the two renames keeps a complete checkpoint after the next start', async () => {
    const storage = memoryStorage();
    await contents(storage, 4, 1);
    // The kill: the old folder is moved aside, the new one never renamed in.
    const killed: TrainingStorage = {
      ...storage,
      rename: async (from, to) => {
        if (to === 'checkpoint-4') throw new Error('killed');
        return storage.rename(from, to);
      },
    };
    await expect(contents(killed, 4, 2)).rejects.toThrow('killed');
    expect(await isCompleteCheckpoint(storage, 'checkpoint-4')).toBe(false);
    await removeUnfinishedSaves(storage);
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-4']);
    expect(await storage.list('')).toEqual(['checkpoint-4']);
    const loaded = await loadCheckpoint(storage, 'checkpoint-4');
    expect(Array.from(loaded.parameters.get('w')!.data)).toEqual([1, 1]);
    expect(await findResumeCheckpoint(storage, true, null)).toBe('checkpoint-4');
  });

  it('a kill after the new one is in place keeps the new one', async () => {
    const storage = memoryStorage();
    await contents(storage, 4, 1);
    const killed: TrainingStorage = {
      ...storage,
      remove: async (path) => {
        if (path.startsWith('.old-')) throw new Error('killed');
        return storage.remove(path);
      },
    };
    await expect(contents(killed, 4, 2)).rejects.toThrow('killed');
    await removeUnfinishedSaves(storage);
    expect(await storage.list('')).toEqual(['checkpoint-4']);
    const loaded = await loadCheckpoint(storage, 'checkpoint-4');
    expect(Array.from(loaded.parameters.get('w')!.data)).toEqual([2, 2]);
  });
});
