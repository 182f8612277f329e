import type { Diagnostic } from './diagnostics/loss-diagnostics.js';

/** Device memory in an event: bytes held by live tensors now and at most since the run began. */
export interface MemoryFigures {
  liveBytes: number;
  peakBytes: number;
}

export interface TrainStartEvent {
  type: 'train-start';
  totalSteps: number;
  stepsPerEpoch: number;
  /** Training rows; -1 for a stream (`streaming: true`), whose length is unknown. */
  trainRows: number;
  validationRows: number;
  trainableParameters: number;
  /** The checkpoint folder a resumed run continues from. */
  resumedFrom: string | null;
  /** The first step this run will take (1 unless resumed). */
  firstStep: number;
}

export interface StepEndEvent {
  type: 'step-end';
  step: number;
  totalSteps: number;
  /** Epochs done, fractional. */
  epoch: number;
  loss: number;
  /** The learning rate this step used. */
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens this step fed through the model (padding excluded), and per second of wall time. */
  tokens: number;
  tokensPerSecond: number;
  stepMs: number;
  elapsedMs: number;
  remainingMs: number;
  memory: MemoryFigures;
  /** Stage metrics of this step (DPO: rewards/*, logps/*; RM: accuracy). */
  metrics: Record<string, number>;
}

export interface EvalEndEvent {
  type: 'eval-end';
  step: number;
  evalLoss: number;
  /** Stage metrics with the `eval_` prefix. */
  metrics: Record<string, number>;
  durationMs: number;
}

export interface CheckpointSavedEvent {
  type: 'checkpoint-saved';
  step: number;
  /** Folder in the output storage (`checkpoint-<step>`). */
  path: string;
  /** Older checkpoints removed by saveTotalLimit. */
  removed: string[];
  durationMs: number;
}

export interface DiagnosticRaisedEvent {
  type: 'diagnostic-raised';
  diagnostic: Diagnostic;
}

export type TrainEndReason = 'completed' | 'stopped' | 'non-finite';

export interface TrainEndEvent {
  type: 'train-end';
  reason: TrainEndReason;
  step: number;
  totalSteps: number;
  /** Loss of the last step taken (NaN if none). */
  loss: number;
  elapsedMs: number;
  memory: MemoryFigures;
  /** The checkpoint to resume from (the last good one), if any. */
  lastCheckpoint: string | null;
}

/** Everything the trainer reports, in the order it happens; the apps render these. */
export type TrainerEvent =
  | TrainStartEvent
  | StepEndEvent
  | EvalEndEvent
  | CheckpointSavedEvent
  | DiagnosticRaisedEvent
  | TrainEndEvent;
