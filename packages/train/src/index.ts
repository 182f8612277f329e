// Public API of @webtune/train. Listed deliberately: what is not here is internal.
// Node-only parts (the output folder on disk) are in '@webtune/train/node'.

// Checkpoints and the output folder
export {
  CHECKPOINT_PREFIX,
  type CheckpointContents,
  checkpointStep,
  isCompleteCheckpoint,
  type LoadedCheckpoint,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  OPTIMIZER_FILE,
  PARAMETERS_FILE,
  readTrainerState,
  removeUnfinishedSaves,
  restoreTensors,
  saveCheckpoint,
  TRAINER_STATE_FILE,
  type TrainerState,
} from './checkpoint/checkpoint.js';
export { CheckpointError, type CheckpointProblem } from './checkpoint/checkpoint-error.js';
export { findResumeCheckpoint } from './checkpoint/resume.js';
export { runIdentity } from './checkpoint/run-identity.js';
export { memoryStorage, type TrainingStorage } from './checkpoint/training-storage.js';
// Settings
export {
  INTERVAL_STRATEGIES,
  type IntervalStrategy,
  type ResolvedTrainingArguments,
  resolveTrainingArguments,
  type TrainingArguments,
} from './config/training-arguments.js';
// Data
export { epochOrder, microBatchesOf } from './data/epoch-order.js';
// The loop
export { isRowStream, type RowStream } from './data/row-stream.js';
export {
  type CollateOptions,
  collateRows,
  type HostBatch,
  type KtoRow,
  type PreferenceRow,
  type SupervisedRow,
  trainedTokensOf,
} from './data/rows.js';
// Diagnostics
export {
  type Diagnostic,
  type DiagnosticKind,
  LossDiagnostics,
  type LossDiagnosticsOptions,
} from './diagnostics/loss-diagnostics.js';
export { firstNonFinite } from './diagnostics/non-finite.js';
// Events
export type {
  CheckpointSavedEvent,
  DiagnosticRaisedEvent,
  EvalEndEvent,
  MemoryFigures,
  StepEndEvent,
  TrainEndEvent,
  TrainEndReason,
  TrainerEvent,
  TrainStartEvent,
} from './events.js';
export { type LossCurve, type LossPoint, lossCurveOfLog } from './log/loss-curve.js';
export { formatDuration, TRAINER_LOG_FILE, TrainerLog, type TrainerLogRow } from './log/trainer-log.js';
// Memory plan: what a run needs on the device, before anything is loaded
export {
  BROWSER_TAB_BUDGET,
  formatMemoryPlan,
  formatPlanBytes,
  type MemoryPlan,
  type MemoryPlanInput,
  type PlanModelShape,
  planMemory,
} from './memory/memory-plan.js';
export { memoryPlanInputOf, type PlanDevice } from './memory/run-memory-input.js';
// Models
export {
  type ExportOptions,
  type TrainableModel,
  type TrainingForwardOptions,
  trainableCausalLM,
  trainablePeftModel,
} from './model/trainable-model.js';
// Optimizer and schedules
export { AdamW, type AdamWSettings, excludedFromWeightDecay } from './optimizer/adamw.js';
// The run plan: a LLaMA-Factory config turned into what a run needs
export {
  type AppliedMethod,
  type ApplyMethodOptions,
  applyMethod,
  type CreateTaskOptions,
  createTask,
  rowKindsOf,
} from './plan/apply-plan.js';
export { baseFormatOf, baseFormatReason, type PrecisionKeys } from './plan/base-format.js';
export { CONFIG_KEYS, type ConfigKey, type LlamaFactoryConfig, REQUIRED_KEYS } from './plan/config-keys.js';
export type { KeySection, KeySpec, KeyStatus, KeyType } from './plan/key-spec.js';
export { editDistance, nearestKey } from './plan/nearest-key.js';
export {
  ConfigError,
  type ConfigIssue,
  type RawConfig,
  type ResolvedConfig,
  resolveConfig,
} from './plan/resolve-config.js';
export {
  type DataPlan,
  encodingOptionsOf,
  type GenerationPlan,
  generationOf,
  type MethodPlan,
  planResolved,
  planRun,
  promptOptionsOf,
  type RunPlan,
  type TaskPlan,
} from './plan/run-plan.js';
export {
  type ApiRewardOptions,
  apiRewardScorer,
  RewardApiError,
  rewardRequestTexts,
} from './ppo/api-reward.js';
export type { GenerationSettings, PpoSample } from './ppo/ppo-rollout.js';
export {
  type PpoResult,
  type PpoSettings,
  type PpoStepFigures,
  type TrainPpoOptions,
  trainPpo,
} from './ppo/ppo-trainer.js';
export { type RewardScorer, rewardScorer } from './ppo/reward-scorer.js';
export {
  learningRateAt,
  SCHEDULE_KWARGS,
  SCHEDULE_TYPES,
  type ScheduleOptions,
  type ScheduleType,
  scheduleKwargsProblems,
  warmupStepsOf,
} from './schedule/learning-rate.js';
// Stages
export { type KtoTaskOptions, ktoTask } from './tasks/kto-task.js';
export {
  checkLogitsChunking,
  LOGITS_CHUNK_ALIGN,
  LOGITS_CHUNK_BYTES,
  type LogitsChunkFacts,
  type LogitsChunking,
  logitsChunkRows,
  TRAINED_HEAD_LOGITS_BYTES,
} from './tasks/logits-chunks.js';
export { type PreferenceTaskOptions, preferenceTask, type ReferenceChoice } from './tasks/preference-task.js';
export { type RewardTaskOptions, rewardTask } from './tasks/reward-task.js';
export { type SupervisedTaskOptions, supervisedTask } from './tasks/sft-task.js';
export type { TaskBatch, TaskMetrics, TaskStep, TrainingTask } from './tasks/training-task.js';
export { loadValueHead, saveValueHead, VALUE_HEAD_FILE } from './tasks/value-head-file.js';
export { evaluate, type TrainOptions, type TrainResult, train } from './trainer.js';
