// Public API of @webtune/peft. Listed deliberately: what is not here is internal.

// Bottleneck adapters
export {
  BOTTLENECK_DEFAULTS,
  type BottleneckConfig,
  bottleneckConfig,
  parseBottleneckConfig,
} from './adapter/adapter-config.js';
export { AdapterBlock, type BottleneckSettings } from './adapter/adapter-layer.js';
export { type AdapterTarget, planBottleneck } from './adapter/adapter-model.js';
// Methods: each PEFT method is a folder that declares its config, tensors, injection and merge
export { BOTTLENECK_METHOD } from './adapter/bottleneck-method.js';
export type { AdapterRuntime } from './adapter-runtime.js';
export { PeftError } from './errors.js';
// Files
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type LoadAdapterOptions,
  loadAdapter,
  readAdapterConfig,
  type SaveAdapterOptions,
  saveAdapter,
} from './files/adapter-files.js';
// Freezing and full fine-tuning
export {
  type FreezeOptions,
  freezeModel,
  freezeTrainableNames,
  fullFineTuning,
  fullTrainableNames,
} from './freeze/freeze.js';
export type { Activation } from './functional.js';
// LoRA, rsLoRA, DoRA, PiSSA
export { kaimingUniform, pissaFactors } from './lora/init.js';
export {
  DEFAULT_LORA_TARGETS,
  LORA_DEFAULTS,
  type LoraConfig,
  type LoraInit,
  loraConfig,
  loraConfigToJson,
  loraScaling,
  parseLoraConfig,
} from './lora/lora-config.js';
export { LoraLinear, type LoraSettings, type LoraTensors } from './lora/lora-linear.js';
export { LORA_METHOD } from './lora/lora-method.js';
export { type LoraTarget, planLora, resolveLoraConfig } from './lora/lora-model.js';
export type { PissaFactors } from './lora/pissa-conversion.js';
export { randomizedSvd, type Svd, svd } from './lora/svd.js';
// Memory planning
export { estimateTrainingMemory, type TrainingMethod } from './memory.js';
export type {
  AdapterPlan,
  InjectedLayer,
  MergeableLayer,
  MethodConfig,
  MethodContext,
  PeftMethod,
  PlannedModule,
} from './methods/peft-method.js';
export { BUILT_IN_METHODS, DEFAULT_METHODS, PeftMethodRegistry } from './methods/registry.js';
export { ModulesToSaveWrapper } from './modules-to-save.js';
// The adapted model
export {
  type AdapterLayer,
  type AddAdapterOptions,
  getPeftModel,
  PEFT_PREFIX,
  type PeftConfig,
  PeftModel,
} from './peft-model.js';
export {
  formatTrainableSummary,
  type ParameterInfo,
  type SummaryOptions,
  type TrainableSummary,
  trainableSummary,
} from './summary.js';
// Target matching
export {
  ALL_LINEAR_SHORTHANDS,
  findTargets,
  fullMatchPattern,
  isAllLinear,
  layerIndexOf,
  linearSuffixes,
  type ModuleSelector,
  matchTarget,
  patternKey,
  type TargetMatch,
  type TargetSelection,
} from './target-modules.js';
export { markTrainable, summarizeTrainable } from './trainable.js';
