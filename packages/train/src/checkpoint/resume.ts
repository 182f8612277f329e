import { checkpointStep, isCompleteCheckpoint, listCheckpoints, readTrainerState } from './checkpoint.js';
import { CheckpointError } from './checkpoint-error.js';
import type { TrainingStorage } from './training-storage.js';

/**
 * Which checkpoint a resume starts from, as Transformers decides it:
 * - a folder name (`checkpoint-30`): that folder, whichever run saved it; missing or incomplete is
 *   an error naming what the output folder holds;
 * - `true`: the newest complete checkpoint saved by this run (same `identity`; checkpoints saved
 *   before identities were recorded count as this run's). None is an error: a resume never
 *   silently starts over (that would overwrite the output folder);
 * - `identity` null: any run's (a check before the run's settings are known).
 * Call after removeUnfinishedSaves. `where` names the output folder in messages.
 */
export async function findResumeCheckpoint(
  storage: TrainingStorage,
  request: true | string,
  identity: string | null,
  where = storage.location ?? 'the output folder',
): Promise<string> {
  if (typeof request === 'string') {
    const name = request.replace(/^\.\/+/, '').replace(/\/+$/, '');
    if (!(await storage.exists(name))) {
      throw new CheckpointError(
        `resume_from_checkpoint: "${name}" does not exist in ${where}${await holding(storage)}`,
        'not-found',
      );
    }
    if (!(await isCompleteCheckpoint(storage, name))) {
      throw new CheckpointError(
        `resume_from_checkpoint: "${name}" in ${where} is not a complete checkpoint (it has no trainer_state.json)${await holding(storage)}`,
        'not-found',
      );
    }
    return name;
  }
  const others: string[] = [];
  for (const name of (await listCheckpoints(storage)).reverse()) {
    if (!(await isCompleteCheckpoint(storage, name))) continue;
    const state = await readTrainerState(storage, name);
    if (identity === null || state.runIdentity === undefined || state.runIdentity === identity) return name;
    others.push(name);
  }
  if (others.length > 0) {
    throw new CheckpointError(
      `resume_from_checkpoint: true, but no checkpoint in ${where} was saved by this run: ${others.reverse().join(', ')} ` +
        'were saved with other settings. To continue from one of them anyway, set resume_from_checkpoint to its folder name (e.g. ' +
        `${others[others.length - 1]}); to start over, remove resume_from_checkpoint and set overwrite_output_dir: true`,
      'other-run',
    );
  }
  throw new CheckpointError(
    `resume_from_checkpoint: true, but no valid checkpoint was found in ${where}; nothing was changed. ` +
      'To start a new run there, remove resume_from_checkpoint (and set overwrite_output_dir: true if the folder is not empty)',
    'none-found',
  );
}

async function holding(storage: TrainingStorage): Promise<string> {
  const names = (await listCheckpoints(storage)).filter((name) => checkpointStep(name) !== null);
  return names.length > 0 ? ` (checkpoints there: ${names.join(', ')})` : ' (it holds no checkpoints)';
}
