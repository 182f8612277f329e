import type { TrainingStorage } from '../checkpoint/training-storage.js';

export const TRAINER_LOG_FILE = 'trainer_log.jsonl';

/**
 * One line of trainer_log.jsonl with LLaMA-Factory's fields (its LogCallback), plus what this
 * trainer adds. Every row has a `loss` (eval rows carry the latest train loss too).
 */
export interface TrainerLogRow {
  current_steps: number;
  total_steps: number;
  loss: number;
  eval_loss?: number;
  lr: number;
  epoch: number;
  percentage: number;
  /** `H:MM:SS`, as Python's str(timedelta). */
  elapsed_time: string;
  remaining_time: string;
  /** Tokens per second over the logged steps. */
  throughput?: number;
  total_tokens?: number;
  grad_norm?: number;
  /** DPO: rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/*; RM: accuracy. */
  [metric: string]: number | string | unknown[] | undefined;
}

/** Milliseconds as Python's str(datetime.timedelta(seconds=int(s))): `0:01:05`, `1 day, 2:00:00`. */
export function formatDuration(milliseconds: number): string {
  const total = Math.max(0, Math.floor(milliseconds / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const clock = `${hours}:${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
  return days > 0 ? `${days} day${days === 1 ? '' : 's'}, ${clock}` : clock;
}

/** Rounds like Transformers' logs (4 decimals for losses and metrics). */
export function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Appends rows to trainer_log.jsonl and trims it back to a checkpoint's row count on resume. */
export class TrainerLog {
  rows = 0;

  constructor(private readonly storage: TrainingStorage | null) {}

  async append(row: TrainerLogRow): Promise<void> {
    this.rows++;
    await this.storage?.appendText(TRAINER_LOG_FILE, `${JSON.stringify(row)}\n`);
  }

  /**
   * Keeps the first `rows` lines: what a run killed after its last checkpoint logged is dropped.
   * Returns the rows kept (a line that does not parse, torn by a kill, is kept but not returned).
   */
  async truncate(rows: number): Promise<TrainerLogRow[]> {
    this.rows = rows;
    if (!this.storage || !(await this.storage.exists(TRAINER_LOG_FILE))) return [];
    const text = new TextDecoder().decode(await this.storage.readFile(TRAINER_LOG_FILE));
    const kept = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(0, rows);
    await this.storage.writeFile(TRAINER_LOG_FILE, kept.map((line) => `${line}\n`).join(''));
    return kept.flatMap((line) => {
      try {
        return [JSON.parse(line) as TrainerLogRow];
      } catch {
        return [];
      }
    });
  }

  /** Starts a new log (a run that does not resume). */
  async reset(): Promise<void> {
    this.rows = 0;
    await this.storage?.remove(TRAINER_LOG_FILE);
  }
}
