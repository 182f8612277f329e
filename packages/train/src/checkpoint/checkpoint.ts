import type { ModelFileSink } from '@webtune/nn';
import { readSafetensorsBytes, writeSafetensors } from '@webtune/safetensors';
import type { Tensor } from '@webtune/tensors';
import { CheckpointError } from './checkpoint-error.js';
import type { TrainingStorage } from './training-storage.js';

export const CHECKPOINT_PREFIX = 'checkpoint-';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const PARAMETERS_FILE = 'trainable_parameters.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const TEMPORARY_PREFIX = '.tmp-';
/** A complete checkpoint moved aside while the same step is saved again (see saveCheckpoint). */
const REPLACED_PREFIX = '.old-';

/** Everything besides tensors that a resumed run needs to continue exactly. */
export interface TrainerState {
  format: 'webtune-trainer-state';
  version: 1;
  /** Optimizer steps done. */
  globalStep: number;
  /** Epochs done, fractional (LLaMA-Factory's `epoch`). */
  epoch: number;
  /** The next micro-batch: epoch index and position in that epoch's order. */
  position: { epoch: number; microBatch: number };
  /** What fixes the data order and the step count; a resume with other values is refused. */
  plan: { seed: number; trainRows: number; microBatchSize: number; accumulation: number; totalSteps: number };
  /** Rows of trainer_log.jsonl written so far (to trim the log of a run killed after this save). */
  logRows: number;
  /** Wall time spent before this save (elapsed_time continues from it). */
  elapsedMs: number;
  /** State of the loss diagnostics (so a resumed run judges like an uninterrupted one). */
  diagnostics: unknown;
  /**
   * The identity of the run that saved it (`runIdentity`: a hash of the settings that decide the
   * result). Missing in checkpoints of versions before it; such checkpoints count as this run's.
   */
  runIdentity?: string;
  /** A streamed run (`streaming: true`): the data stream's position after the last step's rows. */
  stream?: unknown;
  /** A PPO run: what its loop carries from step to step besides tensors (ppo/ppo-checkpoint.ts). */
  ppo?: PpoLoopState;
}

/** PPO's loop state: the KL controller, the score moments, the query order's place, AdamW's steps. */
export interface PpoLoopState {
  klCoefficient: number;
  moments: { mean: number; std: number; variance: number; count: number };
  /** The next epoch of the query order to draw, and the queries left of the current one. */
  queryEpoch: number;
  queriesLeft: number;
  /** AdamW updates so far (PPO makes several per step). */
  optimizerSteps: number;
}

/** What a checkpoint holds. */
export interface CheckpointContents {
  state: TrainerState;
  /** Trainable parameters by name. */
  parameters: readonly [string, Tensor][];
  /** Optimizer moments by name. */
  optimizer: readonly [string, Tensor][];
  /** Extra files (PEFT's adapter files), written into the checkpoint folder. */
  exportFiles?: (sink: ModelFileSink) => Promise<string[]>;
}

/** A checkpoint read back: the state and every tensor's values on the host. */
export interface LoadedCheckpoint {
  path: string;
  state: TrainerState;
  parameters: Map<string, { shape: number[]; data: Float32Array }>;
  optimizer: Map<string, { shape: number[]; data: Float32Array }>;
}

/** The step of a `checkpoint-<step>` folder name, or null. */
export function checkpointStep(name: string): number | null {
  const match = /^checkpoint-(\d+)$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** Complete checkpoints in the output folder, oldest first. */
export async function listCheckpoints(storage: TrainingStorage): Promise<string[]> {
  const names = (await storage.list('')).filter((name) => checkpointStep(name) !== null);
  return names.sort((a, b) => checkpointStep(a)! - checkpointStep(b)!);
}

/** The newest complete checkpoint, or null. */
export async function latestCheckpoint(storage: TrainingStorage): Promise<string | null> {
  const names = await listCheckpoints(storage);
  return names.length > 0 ? names[names.length - 1] : null;
}

/**
 * Tidies the output folder after a crash while saving: removes unfinished saves (`.tmp-*`), and for
 * a checkpoint that was being saved again (moved aside to `.old-checkpoint-<step>-*`) keeps a
 * complete copy: the old one goes back to `checkpoint-<step>` unless a complete new one is
 * already there. Never removes the only complete copy of a step. Returns the folders removed.
 */
export async function removeUnfinishedSaves(storage: TrainingStorage): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await storage.list('')) {
    if (!name.startsWith(REPLACED_PREFIX)) continue;
    const match = /^\.old-(checkpoint-\d+)-/.exec(name);
    const target = match?.[1];
    if (target && !(await isCompleteCheckpoint(storage, target))) {
      await storage.remove(target);
      await storage.rename(name, target);
    } else {
      await storage.remove(name);
      removed.push(name);
    }
  }
  for (const name of await storage.list('')) {
    if (!name.startsWith(TEMPORARY_PREFIX)) continue;
    await storage.remove(name);
    removed.push(name);
  }
  return removed;
}

/** Whether a folder holds a checkpoint whose last-written file (trainer_state.json) is there. */
export async function isCompleteCheckpoint(storage: TrainingStorage, path: string): Promise<boolean> {
  return storage.exists(`${path}/${TRAINER_STATE_FILE}`);
}

/**
 * Writes a checkpoint atomically: every file goes into a temporary folder, the state file last,
 * and only then is the folder renamed to `checkpoint-<step>`. A crash at any moment leaves either
 * no new checkpoint (the previous ones intact, a temporary folder to clean up) or a complete one.
 * Afterwards the oldest checkpoints beyond `keepLast` are removed. Returns the folder and the
 * checkpoints removed.
 */
export async function saveCheckpoint(
  storage: TrainingStorage,
  contents: CheckpointContents,
  keepLast: number | null,
): Promise<{ path: string; removed: string[] }> {
  const step = contents.state.globalStep;
  const path = `${CHECKPOINT_PREFIX}${step}`;
  const temporary = `${TEMPORARY_PREFIX}${path}-${Date.now().toString(36)}`;
  await storage.remove(temporary);
  await storage.writeFile(`${temporary}/${PARAMETERS_FILE}`, await tensorsFile(contents.parameters));
  await storage.writeFile(`${temporary}/${OPTIMIZER_FILE}`, await tensorsFile(contents.optimizer));
  if (contents.exportFiles) {
    await contents.exportFiles({
      writeFile: (name, data) => storage.writeFile(`${temporary}/${name}`, data),
    });
  }
  await storage.writeFile(
    `${temporary}/${TRAINER_STATE_FILE}`,
    `${JSON.stringify(contents.state, null, 2)}\n`,
  );
  if (await storage.exists(path)) {
    // The same step saved again (after a resume): move the old one aside, then drop it. A crash
    // between the renames leaves the old copy under `.old-`, which removeUnfinishedSaves restores.
    const old = `${REPLACED_PREFIX}${path}-${Date.now().toString(36)}`;
    await storage.rename(path, old);
    await storage.rename(temporary, path);
    await storage.remove(old);
  } else {
    await storage.rename(temporary, path);
  }
  const removed: string[] = [];
  if (keepLast !== null && keepLast > 0) {
    const all = await listCheckpoints(storage);
    for (const name of all.slice(0, Math.max(0, all.length - keepLast))) {
      if (name === path) continue;
      await storage.remove(name);
      removed.push(name);
    }
  }
  return { path, removed };
}

/** Reads a checkpoint's trainer_state.json; a missing or broken file is a CheckpointError naming it. */
export async function readTrainerState(storage: TrainingStorage, path: string): Promise<TrainerState> {
  const file = `${path}/${TRAINER_STATE_FILE}`;
  let state: TrainerState;
  try {
    state = JSON.parse(new TextDecoder().decode(await storage.readFile(file))) as TrainerState;
  } catch (error) {
    throw new CheckpointError(`${file}: cannot be read as JSON (${(error as Error).message})`, 'unreadable');
  }
  if (
    typeof state !== 'object' ||
    state === null ||
    state.format !== 'webtune-trainer-state' ||
    state.version !== 1 ||
    !Number.isInteger(state.globalStep) ||
    typeof state.plan !== 'object' ||
    state.plan === null ||
    typeof state.position !== 'object' ||
    state.position === null
  ) {
    throw new CheckpointError(`${file} is not a webtune trainer state (version 1)`, 'unreadable');
  }
  return state;
}

/** Reads a checkpoint folder (see saveCheckpoint). */
export async function loadCheckpoint(storage: TrainingStorage, path: string): Promise<LoadedCheckpoint> {
  const state = await readTrainerState(storage, path);
  const tensors = async (name: string) => {
    const file = `${path}/${name}`;
    try {
      return readTensorsFile(await storage.readFile(file), file);
    } catch (error) {
      const message = (error as Error).message;
      throw new CheckpointError(message.includes(file) ? message : `${file}: ${message}`, 'unreadable');
    }
  };
  return {
    path,
    state,
    parameters: await tensors(PARAMETERS_FILE),
    optimizer: await tensors(OPTIMIZER_FILE),
  };
}

/**
 * Writes saved values into live tensors (same names, same shapes): parameters or optimizer
 * moments. Every tensor must be found; a mismatch names the tensor and what differs.
 */
export function restoreTensors(
  targets: readonly [string, Tensor][],
  values: Map<string, { shape: number[]; data: Float32Array }>,
  what: string,
): void {
  for (const [name, tensor] of targets) {
    const saved = values.get(name);
    if (!saved) throw new Error(`${what}: the checkpoint has no tensor "${name}"`);
    if (saved.shape.join(',') !== tensor.shape.join(',')) {
      throw new Error(
        `${what}: "${name}" is [${saved.shape}] in the checkpoint but [${tensor.shape}] in the model`,
      );
    }
    tensor.device.write(tensor, saved.data);
  }
}

async function tensorsFile(tensors: readonly [string, Tensor][]): Promise<Uint8Array> {
  const entries = [];
  for (const [name, tensor] of tensors) {
    const values = await tensor.toArray();
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    entries.push({ name, dtype: 'F32' as const, shape: [...tensor.shape], data });
  }
  return writeSafetensors(entries, { format: 'pt' });
}

function readTensorsFile(
  bytes: Uint8Array,
  fileName: string,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const entry of readSafetensorsBytes(bytes, { fileName }).tensors) {
    if (entry.dtype !== 'F32')
      throw new Error(`${fileName}: "${entry.name}" is ${entry.dtype}, expected F32`);
    const copy = new Uint8Array(entry.data);
    out.set(entry.name, { shape: entry.shape, data: new Float32Array(copy.buffer, 0, copy.length / 4) });
  }
  return out;
}
