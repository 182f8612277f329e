/*
 * What a run left in the origin-private file system, read back after a reload: its checkpoints,
 * how far it got, whether it completed (the trainer writes the adapter files into the run's folder
 * at the end), and its trainer_log.jsonl for the chart. The Train tab uses it to offer the right
 * next step: Resume a paused run, or use the result of a completed one.
 */
import {
  checkpointStep,
  readTrainerState,
  TRAINER_LOG_FILE,
  type TrainerLogRow,
  type TrainingStorage,
} from '@webtune/train';
import { listCheckpointsOf, listRuns, opfsStorage } from './opfs-storage.js';
import type { RunState } from './protocol.js';

/** Files a completed run writes at the top of its folder, by method. */
export const RESULT_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;

/** The state of a run kept in this browser; an empty state when there is none. */
export async function readRunState(runName: string): Promise<RunState> {
  const empty: RunState = {
    runName,
    checkpoints: [],
    lastStep: 0,
    totalSteps: 0,
    completed: false,
    hasResult: false,
    log: [],
  };
  if (!(await listRuns()).includes(runName)) return empty;
  const checkpoints = await listCheckpointsOf(runName);
  const storage = await opfsStorage(runName);
  const last = checkpoints[checkpoints.length - 1];
  let lastStep = last ? (checkpointStep(last) ?? 0) : 0;
  let totalSteps = 0;
  if (last) {
    try {
      const state = await readTrainerState(storage, last);
      lastStep = state.globalStep;
      totalSteps = state.plan.totalSteps;
    } catch {
      // An unreadable checkpoint: the trainer reports it when Resume is pressed.
    }
  }
  const hasResult = await hasAll(storage, RESULT_FILES);
  const log = await readLog(storage);
  const lastRow = log[log.length - 1];
  if (totalSteps === 0 && lastRow) totalSteps = lastRow.total_steps;
  // A run without checkpoints (PPO saves only at the end): its log says how far it got.
  if (lastStep === 0 && lastRow && hasResult) lastStep = lastRow.current_steps;
  return {
    runName,
    checkpoints,
    lastStep,
    totalSteps,
    completed: hasResult || (totalSteps > 0 && lastStep >= totalSteps),
    hasResult,
    log,
  };
}

/** The adapter files a completed run wrote, by name (for loadAdapter). */
export async function readRunResult(runName: string): Promise<Map<string, Uint8Array>> {
  const storage = await opfsStorage(runName);
  if (!(await hasAll(storage, RESULT_FILES))) {
    throw new Error(
      `run “${runName}” has no adapter files (adapter_config.json, adapter_model.safetensors): only a completed LoRA, DoRA or adapter run leaves them`,
    );
  }
  const files = new Map<string, Uint8Array>();
  for (const name of RESULT_FILES) files.set(name, await storage.readFile(name));
  return files;
}

async function hasAll(storage: TrainingStorage, names: readonly string[]): Promise<boolean> {
  for (const name of names) if (!(await storage.exists(name))) return false;
  return true;
}

/** The rows of trainer_log.jsonl that parse (a line torn by a kill is skipped). */
async function readLog(storage: TrainingStorage): Promise<TrainerLogRow[]> {
  if (!(await storage.exists(TRAINER_LOG_FILE))) return [];
  const text = new TextDecoder().decode(await storage.readFile(TRAINER_LOG_FILE));
  const rows: TrainerLogRow[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const row = JSON.parse(line) as TrainerLogRow;
      if (typeof row.current_steps === 'number') rows.push(row);
    } catch {
      // torn line
    }
  }
  return rows;
}
