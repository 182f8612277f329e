import type { TrainerLogRow } from './trainer-log.js';

export interface LossPoint {
  step: number;
  loss: number;
}

/** The losses of a run for a plot: every step's train loss, and the eval losses. */
export interface LossCurve {
  train: LossPoint[];
  eval: LossPoint[];
}

/**
 * The curve a trainer_log.jsonl holds (a resumed run's past): eval rows give eval points, the other
 * rows train points (the mean loss over the steps since the previous row, as the log writes it).
 */
export function lossCurveOfLog(rows: readonly TrainerLogRow[]): LossCurve {
  const curve: LossCurve = { train: [], eval: [] };
  for (const row of rows) {
    if (typeof row.eval_loss === 'number') curve.eval.push({ step: row.current_steps, loss: row.eval_loss });
    else if (typeof row.loss === 'number') curve.train.push({ step: row.current_steps, loss: row.loss });
  }
  return curve;
}
