// Public API of @webtune/objectives. Listed deliberately: what is not here is internal.

// Language-modelling losses
export {
  type CausalLmLossOptions,
  causalLmLoss,
  countTrainedTokens,
  rowTokenWeights,
  sftLoss,
  shiftLabels,
} from './causal-lm-loss.js';
export {
  type KtoInputs,
  type KtoLossOptions,
  type KtoLossResult,
  type KtoStatistics,
  type KtoStatisticsValues,
  ktoLoss,
  packKtoStatistics,
  unpackKtoStatistics,
} from './kto-loss.js';
export { logSigmoid } from './log-sigmoid.js';
// Metrics (update / compute / reset)
export { KtoMetrics } from './metrics/kto-metrics.js';
export { MeanMetric } from './metrics/mean-metric.js';
export { PreferenceMetrics } from './metrics/preference-metrics.js';
export { RewardMetrics } from './metrics/reward-metrics.js';
// PPO (LLaMA-Factory's stage ppo: TRL 0.9's formulas)
export { type PpoLossInputs, type PpoLossOptions, type PpoLossResult, ppoLoss } from './ppo/ppo-loss.js';
export {
  AdaptiveKlController,
  generalizedAdvantages,
  RunningMoments,
  tokenRewards,
  whiten,
} from './ppo/ppo-math.js';
// Preference losses (the DPO family)
export {
  averagesLogProbs,
  needsReference,
  type PairLogProbs,
  PREFERENCE_LOSS_TYPES,
  type PreferenceLossOptions,
  type PreferenceLossResult,
  type PreferenceLossType,
  type PreferenceStatistics,
  type PreferenceStatisticsValues,
  preferenceLoss,
  readPreferenceStatistics,
} from './preference-loss.js';
export {
  adaptersDisabledReference,
  frozenCopyReference,
  type PrecomputedLogProbs,
  precomputedReference,
  precomputeReferenceLogProbs,
  type ReferenceBatch,
  type ReferenceLogProbs,
  type ReferenceModel,
} from './reference-log-probs.js';
// Reward model
export {
  createValueHead,
  lastTokenPositions,
  type PairwiseRewardResult,
  pairwiseRewardLoss,
  VALUE_HEAD_NAMES,
  type ValueHead,
  valueHeadScores,
} from './reward-model-loss.js';
export { sequenceLogProbs, trainedLengths } from './sequence-log-probs.js';
export {
  type ClassifierSource,
  IGNORE_INDEX,
  type LogitsSource,
  tokenCrossEntropy,
} from './token-cross-entropy.js';
