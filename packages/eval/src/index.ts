// Public API of @webtune/eval. Listed deliberately: what is not here is internal.
// Node-only helpers (task folders on disk, JSONL files, model folders) are in '@webtune/eval/node'.

// CSV
export { type CsvRecord, parseCsv } from './csv/csv.js';
export { EvaluationError, type FileLocation } from './errors.js';
// Forgetting report
export {
  type BenchmarkComparison,
  compareMcqResults,
  comparePerplexity,
  evaluateForgetting,
  type ForgettingOptions,
  type ForgettingReport,
  type ForgettingRun,
  type ForgettingVerdict,
  forgettingReport,
  formatForgettingReport,
} from './forgetting/forgetting-report.js';
// Multiple choice (MMLU, C-Eval, CMMLU)
export { type ChoiceScorer, modelChoiceScorer } from './mcq/choice-scorer.js';
export {
  argmax,
  evaluateMcq,
  letterTokenIds,
  type McqOptions,
  type McqProgress,
  softmax,
} from './mcq/evaluate-mcq.js';
export {
  aggregateMcq,
  formatMcqMarkdown,
  type McqCategoryScore,
  type McqQuestionResult,
  type McqResult,
  type McqScore,
  type McqSubjectScore,
  type McqTiming,
  mcqResultToJson,
} from './mcq/mcq-result.js';
export { formatQuestion, MCQ_ANSWER_CUES, MCQ_HEADERS, mcqConversation } from './mcq/prompt.js';
export {
  CHOICE_LETTERS,
  type ChoiceLetter,
  type LoadMcqTaskOptions,
  loadMcqTask,
  type McqFormat,
  type McqLanguage,
  type McqQuestion,
  type McqSplit,
  type McqSubject,
  type McqTask,
} from './mcq/task.js';
// Generation metrics
export { type BleuOptions, type BleuSmoothing, sentenceBleu } from './metrics/bleu.js';
export {
  type GenerationMetricOptions,
  type GenerationMetrics,
  generationMetrics,
  type PredictionPair,
  pairMetrics,
} from './metrics/generation-metrics.js';
export { longestCommonSubsequence, type RougeScore, rougeL, rougeN } from './metrics/rouge.js';
export { type Segmentation, segmentText } from './metrics/segment.js';
// Pairwise comparison
export {
  type BlindItem,
  type BlindResult,
  BlindSession,
  type BlindSessionState,
  type BlindVote,
  type UnblindedItem,
} from './pairwise/blind-session.js';
export {
  type AdaptedModel,
  adapterVariants,
  type ComparisonPair,
  type ComparisonSet,
  collectAnswers,
  type ModelVariant,
  type PairOutcome,
  promptText,
  withVariant,
} from './pairwise/comparison.js';
export {
  combineVerdicts,
  endpointJudge,
  JUDGE_SYSTEM_PROMPT,
  type JudgeBackend,
  type JudgedPair,
  type JudgeOptions,
  type JudgeResult,
  judgeMessages,
  judgePairs,
  localModelJudge,
  parseVerdict,
  type Verdict,
} from './pairwise/judge.js';
export {
  type ChatEndpoint,
  type ChatRequestOptions,
  chatCompletion,
  type JudgeMessage,
} from './pairwise/openai-client.js';
export {
  type PreferenceRow,
  preferenceDatasetInfo,
  preferenceRows,
  type ShareGptMessage,
} from './pairwise/preference-export.js';
export {
  bootstrapInterval,
  formatWinRate,
  normalQuantile,
  summarizeOutcomes,
  type WinRateOptions,
  type WinRateSummary,
  wilsonInterval,
} from './pairwise/win-rate.js';
// Predict
export {
  type PredictExample,
  type PredictionRecord,
  type PredictOptions,
  type PredictResult,
  parsePredictionsJsonl,
  predict,
  predictExamplesFrom,
  predictionsToJsonl,
} from './predict/predict.js';
// Prompts
export {
  asConversation,
  type EvalTokenizer,
  type PromptOptions,
  promptEncoderFor,
} from './prompt-encoding.js';
