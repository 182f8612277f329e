import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints, loadCheckpoint, TRAINER_STATE_FILE } from './checkpoint/checkpoint.js';
import { memoryStorage, type TrainingStorage } from './checkpoint/training-storage.js';
import type { TrainingArguments } from './config/training-arguments.js';
import type { TrainerEvent } from './events.js';
import { supervisedTask } from './tasks/sft-task.js';
import { patternRows, toyModel } from './testing/toy-model.js';
import { readTrainerLog, SIMULATED_KILL, trainToyModel } from './testing/toy-run.js';
import { train } from './trainer.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());
afterEach(() => clearTape());

const ROWS = patternRows(24, 7);
const ARGS: TrainingArguments = {
  perDeviceTrainBatchSize: 2,
  gradientAccumulationSteps: 2,
  numTrainEpochs: 2,
  learningRate: 0.05,
  lrSchedulerType: 'cosine',
  warmupSteps: 2,
  weightDecay: 0.01,
  loggingSteps: 2,
  seed: 7,
};

/** Trains a fresh toy model on ROWS, with four more rows to evaluate on. */
const run = (
  args: TrainingArguments,
  storage: TrainingStorage | null = null,
  stopAt?: (e: TrainerEvent) => boolean,
) => trainToyModel(device, { train: ROWS, validation: patternRows(4, 7), args, storage, stopAt });

describe('train on a toy model', () => {
  it('lowers the loss, emits events in order, and writes LLaMA-Factory log rows', async () => {
    const storage = memoryStorage();
    const { result, events } = await run({ ...ARGS, evalSteps: 6 }, storage);
    // 24 rows / 2 per micro-batch = 12 micro-batches, / 2 accumulated = 6 steps per epoch, 2 epochs.
    expect(result.steps).toBe(12);
    expect(result.reason).toBe('completed');
    expect(result.losses.length).toBe(12);
    expect(result.losses[11]).toBeLessThan(result.losses[0] * 0.7);
    expect(events[0]).toMatchObject({ type: 'train-start', totalSteps: 12, stepsPerEpoch: 6, firstStep: 1 });
    expect(events[events.length - 1]).toMatchObject({ type: 'train-end', reason: 'completed', step: 12 });
    const steps = events.filter((e) => e.type === 'step-end');
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const first = steps[0];
    expect(first.learningRate).toBe(0); // warmup starts at 0
    expect(first.tokens).toBe(4 * 7);
    expect(first.tokensPerSecond).toBeGreaterThan(0);
    expect(first.memory.peakBytes).toBeGreaterThan(0);
    expect(first.gradNorm).toBeGreaterThan(0);
    const evals = events.filter((e) => e.type === 'eval-end');
    expect(evals.map((e) => e.step)).toEqual([6, 12]);
    expect(evals[1].evalLoss).toBeLessThan(evals[0].evalLoss);
    const log = await readTrainerLog(storage);
    for (const row of log) {
      expect(Object.keys(row)).toEqual(
        expect.arrayContaining([
          'current_steps',
          'total_steps',
          'loss',
          'lr',
          'epoch',
          'percentage',
          'elapsed_time',
          'remaining_time',
        ]),
      );
      expect(typeof row.loss).toBe('number');
      expect(row.elapsed_time).toMatch(/^\d+:\d\d:\d\d$/);
    }
    expect(log.filter((row) => row.eval_loss === undefined).map((row) => row.current_steps)).toEqual([
      2, 4, 6, 8, 10, 12,
    ]);
    expect(log.filter((row) => row.eval_loss !== undefined).length).toBeGreaterThanOrEqual(2);
    // The logged loss is the mean over the logging interval.
    expect(log[0].loss).toBeCloseTo((result.losses[0] + result.losses[1]) / 2, 4);
    expect(log.find((row) => row.current_steps === 12).percentage).toBe(100);
    // The loss curve handed to callers: every step's loss and the eval losses.
    expect(result.lossCurve.train).toEqual(result.losses.map((loss, i) => ({ step: i + 1, loss })));
    expect(result.lossCurve.eval).toEqual(evals.map((e) => ({ step: e.step, loss: e.evalLoss })));
  });

  it("evaluates and saves at the end of every epoch with strategy 'epoch' (and at the last, partial one)", async () => {
    const storage = memoryStorage();
    // 6 steps per epoch, 1.5 epochs: 9 steps; epochs end after steps 6 and 9.
    const { result, events } = await run(
      {
        ...ARGS,
        numTrainEpochs: 1.5,
        evalStrategy: 'epoch',
        saveStrategy: 'epoch',
        evalSteps: 2,
        saveSteps: 2,
      },
      storage,
    );
    expect(result.steps).toBe(9);
    expect(events.filter((e) => e.type === 'eval-end').map((e) => e.step)).toEqual([6, 9]);
    expect(events.filter((e) => e.type === 'checkpoint-saved').map((e) => e.step)).toEqual([6, 9]);
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-6', 'checkpoint-9']);
    const evalRows = (await readTrainerLog(storage)).filter((row) => row.eval_loss !== undefined);
    expect(evalRows.map((row) => [row.current_steps, row.epoch])).toEqual([
      [6, 1],
      [9, 1.5],
    ]);

    // 'no' turns both off even with intervals given; 'steps' without an interval evaluates every loggingSteps.
    const off = await run(
      { ...ARGS, maxSteps: 4, evalStrategy: 'no', saveStrategy: 'no', evalSteps: 2, saveSteps: 2 },
      memoryStorage(),
    );
    expect(off.events.filter((e) => e.type === 'eval-end' || e.type === 'checkpoint-saved')).toEqual([]);
    const steps = await run({ ...ARGS, maxSteps: 4, evalStrategy: 'steps' });
    expect(steps.events.filter((e) => e.type === 'eval-end').map((e) => e.step)).toEqual([2, 4]);
  });

  it('accumulating 4 micro-batches of 1 equals one micro-batch of 4 (token-normalised)', async () => {
    const common = { ...ARGS, shuffle: false, maxSteps: 4, maxGradNorm: 0 };
    const accumulated = await run({ ...common, perDeviceTrainBatchSize: 1, gradientAccumulationSteps: 4 });
    const single = await run({ ...common, perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 1 });
    for (let i = 0; i < 4; i++) expect(accumulated.result.losses[i]).toBeCloseTo(single.result.losses[i], 5);
    const difference = Math.max(
      ...Array.from(accumulated.weights, (w, i) => Math.abs(w - single.weights[i])),
    );
    expect(difference).toBeLessThan(1e-5);
  });

  it('a run killed after a checkpoint resumes with exactly the same losses, log and weights', async () => {
    const args = { ...ARGS, saveSteps: 4 };
    const reference = await run(args, memoryStorage());
    const storage = memoryStorage();
    // Killed during step 7 (after checkpoint-4 and before checkpoint-8).
    await expect(run(args, storage, (e) => e.type === 'step-end' && e.step === 6)).rejects.toThrow(
      SIMULATED_KILL,
    );
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-4']);
    const resumed = await run({ ...args, resumeFromCheckpoint: true }, storage);
    expect(resumed.events[0]).toMatchObject({
      type: 'train-start',
      resumedFrom: 'checkpoint-4',
      firstStep: 5,
    });
    expect(resumed.result.losses).toEqual(reference.result.losses.slice(4));
    expect(Array.from(resumed.weights)).toEqual(Array.from(reference.weights));
    // The log has the rows up to step 4 once, then the resumed ones: no duplicates.
    const log = await readTrainerLog(storage);
    expect(log.map((row) => row.current_steps)).toEqual([2, 4, 6, 8, 10, 12]);
    // The curve handed back covers the whole run: the logged rows before the resume, then every step.
    expect(resumed.result.lossCurve.train).toEqual([
      { step: 2, loss: log[0].loss },
      { step: 4, loss: log[1].loss },
      ...resumed.result.losses.map((loss, i) => ({ step: i + 5, loss })),
    ]);
    const state = (await loadCheckpoint(storage, 'checkpoint-8')).state;
    expect(state).toMatchObject({ globalStep: 8, position: { epoch: 1, microBatch: 4 } });
  });

  it("after a resume, the remaining time comes from this run's own time and steps", async () => {
    const args = { ...ARGS, saveSteps: 4 };
    const storage = memoryStorage();
    await expect(run(args, storage, (e) => e.type === 'step-end' && e.step === 6)).rejects.toThrow(
      SIMULATED_KILL,
    );
    // The runs before took (so the checkpoint says) 10^9 ms: elapsed time counts them, the estimate does not.
    const statePath = `checkpoint-4/${TRAINER_STATE_FILE}`;
    const state = JSON.parse(new TextDecoder().decode(await storage.readFile(statePath)));
    await storage.writeFile(statePath, JSON.stringify({ ...state, elapsedMs: 1e9 }));
    const started = performance.now();
    const resumed = await run({ ...args, resumeFromCheckpoint: true }, storage);
    const took = performance.now() - started;
    const steps = resumed.events.filter((e) => e.type === 'step-end');
    expect(steps[0]).toMatchObject({ step: 5 });
    for (const event of steps) {
      expect(event.elapsedMs).toBeGreaterThanOrEqual(1e9);
      // This run's steps so far each took at most `took`: the rest (12 - step) cannot take longer.
      expect(event.remainingMs).toBeLessThanOrEqual(took * (12 - event.step));
    }
    expect(steps[steps.length - 1].remainingMs).toBe(0);
  });

  it('a crash while saving leaves the previous checkpoint intact, and resuming from it repeats the run', async () => {
    const args = { ...ARGS, saveSteps: 4 };
    const reference = await run(args, memoryStorage());
    const storage = memoryStorage();
    let writes = 0;
    const failing: TrainingStorage = {
      ...storage,
      writeFile: async (path, contents) => {
        // The second checkpoint dies after its first file.
        if (path.includes('checkpoint-8') && ++writes === 2) throw new Error('disk gone');
        return storage.writeFile(path, contents);
      },
    };
    await expect(run(args, failing)).rejects.toThrow('disk gone');
    const names = await storage.list('');
    expect(names).toContain('checkpoint-4');
    expect(names).not.toContain('checkpoint-8');
    expect(names.some((name) => name.startsWith('.tmp-checkpoint-8'))).toBe(true);
    const resumed = await run({ ...args, resumeFromCheckpoint: true }, storage);
    expect(resumed.result.losses).toEqual(reference.result.losses.slice(4));
    expect((await storage.list('')).some((name) => name.startsWith('.tmp-'))).toBe(false);
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-4', 'checkpoint-8', 'checkpoint-12']);
  });

  it('keeps only the last saveTotalLimit checkpoints; a stop request saves one to resume from', async () => {
    const storage = memoryStorage();
    const { events } = await run({ ...ARGS, saveSteps: 2, saveTotalLimit: 2 }, storage);
    expect(await listCheckpoints(storage)).toEqual(['checkpoint-10', 'checkpoint-12']);
    const saved = events.filter((e) => e.type === 'checkpoint-saved');
    expect(saved.map((e) => e.path)).toEqual([
      'checkpoint-2',
      'checkpoint-4',
      'checkpoint-6',
      'checkpoint-8',
      'checkpoint-10',
      'checkpoint-12',
    ]);
    expect(saved[2]).toMatchObject({ removed: ['checkpoint-2'] });

    const controller = new AbortController();
    const stopped = memoryStorage();
    const model = toyModel(device);
    const result = await train({
      model,
      task: supervisedTask(),
      train: ROWS,
      args: ARGS,
      storage: stopped,
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'step-end' && event.step === 3) controller.abort();
      },
    });
    model.dispose();
    expect(result).toMatchObject({ reason: 'stopped', steps: 3, lastCheckpoint: 'checkpoint-3' });
    expect(await listCheckpoints(stopped)).toEqual(['checkpoint-3']);
  });

  it('stops on a NaN loss before the update, names the step and tensor, and keeps the last good checkpoint', async () => {
    const rows = patternRows(12, 7);
    rows[8] = { ...rows[8], labels: rows[8].labels.map((label, t) => (t === 3 ? 999 : label)) };
    const storage = memoryStorage();
    const model = toyModel(device);
    const before = await model.parameters[4][1].toArray();
    const events: TrainerEvent[] = [];
    const result = await train({
      model,
      task: supervisedTask(),
      train: rows,
      args: {
        ...ARGS,
        shuffle: false,
        perDeviceTrainBatchSize: 4,
        gradientAccumulationSteps: 1,
        saveSteps: 1,
      },
      storage,
      onEvent: (event) => events.push(event),
    });
    expect(result.reason).toBe('non-finite');
    expect(result.steps).toBe(2);
    expect(result.lastCheckpoint).toBe('checkpoint-2');
    const diagnostic = result.diagnostics.find((d) => d.kind === 'non-finite')!;
    expect(diagnostic).toMatchObject({ step: 3, tensor: 'loss', severity: 'error' });
    expect(diagnostic.message).toMatch(/Step 3 produced NaN in loss/);
    expect(events.some((e) => e.type === 'diagnostic-raised' && e.diagnostic.kind === 'non-finite')).toBe(
      true,
    );
    expect(events[events.length - 1]).toMatchObject({
      type: 'train-end',
      reason: 'non-finite',
      lastCheckpoint: 'checkpoint-2',
    });
    const lastRow = (await readTrainerLog(storage)).pop();
    expect(lastRow).toMatchObject({ current_steps: 3, loss: null });
    expect(lastRow.diagnostics[0].kind).toBe('non-finite');
    // The weights are those of step 2 (the saved checkpoint), not touched by step 3.
    const saved = (await loadCheckpoint(storage, 'checkpoint-2')).parameters.get('lm_head.weight')!;
    expect(Array.from(await model.parameters[4][1].toArray())).toEqual(Array.from(saved.data));
    expect(Array.from(saved.data)).not.toEqual(Array.from(before));
    model.dispose();
  });

  it('refuses to resume a checkpoint saved with another plan', async () => {
    const storage = memoryStorage();
    await run({ ...ARGS, maxSteps: 2, saveSteps: 2 }, storage);
    // Asked for by name (with `true` it counts as another run's: see checkpoint/resume.test.ts).
    await expect(
      run({ ...ARGS, maxSteps: 2, seed: 8, resumeFromCheckpoint: 'checkpoint-2' }, storage),
    ).rejects.toThrow(/seed 7 -> 8/);
  });
});
