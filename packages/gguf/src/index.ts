// @webtune/gguf: read, validate, dequantize, quantize and write GGUF files (llama.cpp's format),
// and map GGUF models and LoRA adapters to and from Hugging Face names. No GPU code; runs in Node
// and browsers (files are read by byte range through a RandomAccessReader).
export {
  GGUF_ARCHITECTURES,
  ggufArchitectureMetadata,
  ggufArchitectureOf,
  huggingFaceConfigOf,
} from './architecture.js';
export { dequantize, scaleAndMin } from './dequantize.js';
export { GgufError } from './errors.js';
export {
  gemmaQueryFactor,
  llama3FrequencyFactors,
  type RopeFields,
  ropeFieldsOf,
  ropeScalingOfFactors,
} from './families.js';
export {
  GGML_BLOCK_LAYOUT,
  GGML_TYPE_NAMES,
  GGML_TYPES,
  type GgmlTypeName,
  ggmlTensorBytes,
  ggmlTypeName,
  supportedTypeName,
} from './ggml-types.js';
export {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  type GgufHeader,
  type GgufTensorInfo,
  readGgufHeader,
} from './header.js';
export { type AdapterTensor, ggufLoraFile } from './lora.js';
export {
  GGUF_VALUE_TYPES,
  type GgufMetadata,
  type GgufScalar,
  type GgufScalarTypeName,
  type GgufValue,
  type GgufValueTypeName,
  gguf,
} from './metadata.js';
export {
  type ExportTensor,
  GGUF_FILE_TYPES,
  type GgufFileType,
  type GgufModel,
  type GgufModelExport,
  type GgufModelTensor,
  type GgufTensorReadOptions,
  ggufModelFile,
  ggufTensorType,
  openGgufModel,
} from './model.js';
export { type ModelfileOptions, ollamaModelfile } from './modelfile.js';
export { type QuantizableType, quantize } from './quantize.js';
export { GgufFile, type GgufSource, type GgufTensorData, readGguf } from './read.js';
export {
  ggufModuleName,
  ggufTensorName,
  huggingFaceTensorName,
  permutedHeads,
  permuteRotaryRows,
} from './tensor-names.js';
export {
  ggufTokenizerMetadata,
  type HuggingFaceTokenizerFiles,
  huggingFaceTokenizerOf,
  mergesFromScores,
  TOKEN_TYPES,
} from './vocabulary.js';
export { type GgufLayout, type GgufTensorInput, planGguf, writeGguf, writeGgufBytes } from './write.js';
