import type { Device } from '@webtune/tensors';
import type { TrainingStorage } from '../checkpoint/training-storage.js';
import type { TrainingArguments } from '../config/training-arguments.js';
import type { SupervisedRow } from '../data/rows.js';
import type { TrainerEvent } from '../events.js';
import { TRAINER_LOG_FILE } from '../log/trainer-log.js';
import { supervisedTask } from '../tasks/sft-task.js';
import { train } from '../trainer.js';
import { toyModel } from './toy-model.js';

/** What `stopAt` throws: a process killed in the middle of a run. */
export const SIMULATED_KILL = 'simulated kill';

/**
 * Trains a fresh toy model (the same initial weights every time) with the SFT task and returns the
 * result, every event and the final lm_head weights; `stopAt` kills the run at the first event it accepts.
 */
export async function trainToyModel(
  device: Device,
  run: {
    train: SupervisedRow[];
    validation?: SupervisedRow[];
    args: TrainingArguments;
    storage?: TrainingStorage | null;
    stopAt?: (event: TrainerEvent) => boolean;
  },
) {
  const model = toyModel(device);
  const events: TrainerEvent[] = [];
  try {
    const result = await train({
      model,
      task: supervisedTask(),
      train: run.train,
      ...(run.validation ? { validation: run.validation } : {}),
      args: run.args,
      storage: run.storage ?? null,
      onEvent: (event) => {
        events.push(event);
        if (run.stopAt?.(event)) throw new Error(SIMULATED_KILL);
      },
    });
    return { result, events, weights: Array.from(await model.parameters[4][1].toArray()) };
  } finally {
    model.dispose();
  }
}

/** The rows of trainer_log.jsonl in a run's storage (parsed JSON, as a test reads them). */
export async function readTrainerLog(storage: TrainingStorage) {
  return new TextDecoder()
    .decode(await storage.readFile(TRAINER_LOG_FILE))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}
