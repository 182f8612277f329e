// Public API of @webtune/nn. Listed deliberately: what is not here is internal.
// Node-only helpers (directories, llama2.c files, hub downloads) are in '@webtune/nn/node'.

// Config
export {
  type Architecture,
  createModelConfig,
  estimateParameterCount,
  MODEL_CONFIG_LIMITS,
  type ModelConfig,
  modelConfigToJson,
  parseModelConfig,
  type RopeScaling,
  SUPPORTED_ARCHITECTURES,
} from './config/model-config.js';
export { ModelError } from './errors.js';
export {
  FusedDecoder,
  type FusedLowRankLayer,
  type FusedLowRankTerm,
  fusedDecodeUnsupported,
} from './generation/fused-decoder.js';
// Generation
export {
  type FinishReason,
  type GenerateOptions,
  type GenerationResult,
  type GenerationTimings,
  generate,
  generateWithTimings,
  type TokenEvent,
} from './generation/generate.js';
export { KVCache } from './generation/kv-cache.js';
export {
  applyRepetitionPenalty,
  argmaxOf,
  type SamplingOptions,
  SeededRandom,
  sampleToken,
  samplingDistribution,
} from './generation/sampling.js';
export {
  type BaseFormat,
  describeBaseFormat,
  formatFor,
  type PackSummary,
  type PackTarget,
  packedTarget,
  packFrozen,
  packFrozenWeights,
  tableFormat,
} from './loading/frozen-weights.js';
export { isGgufPath, loadGguf } from './loading/gguf.js';
export {
  GGUF_EXPORT_TYPES,
  type GgufBundle,
  type GgufBundleFile,
  type GgufBundleOptions,
  ggufAdapterChunks,
  ggufBundle,
  ollamaStopTokens,
} from './loading/gguf-bundle.js';
// Loading and saving
export {
  interleavedToHalf,
  type Llama2cHeader,
  llama2cConfig,
  loadLlama2c,
  parseLlama2cHeader,
} from './loading/llama2c.js';
export { type LoadProgress, type LoadWeightsOptions, loadWeights } from './loading/load-weights.js';
export {
  type GenerationConfig,
  loadPretrained,
  type ModelFileSource,
  memoryFileSource,
  type PretrainedModel,
  parseGenerationConfig,
  TOKENIZER_FILES,
  weightEntries,
} from './loading/pretrained.js';
export { type ModelFileSink, type SaveOptions, saveModel } from './loading/save.js';
export { ggufChunks, type SaveGgufOptions } from './loading/save-gguf.js';
// Models
export {
  Attention,
  CausalLM,
  DecoderLayer,
  DecoderModel,
  type ForwardOptions,
  GatedMLP,
  type LayerContext,
  parameterShapes,
} from './models/llama.js';
// Modules
export { type InitializeOptions, initializeModel } from './module/initialize.js';
export { Embedding, Linear, type LinearLike, RMSNorm } from './module/layers.js';
export { Module, ModuleList, type ParameterSlot } from './module/module.js';
// Evaluation
export { type PerplexityOptions, type PerplexityResult, perplexity, perplexityOfIds } from './perplexity.js';
export type { TextTokenizer } from './tokenizer.js';
