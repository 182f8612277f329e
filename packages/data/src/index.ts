/**
 * @webtune/data: LLaMA-Factory-compatible datasets, chat templates, tokenization with label masks,
 * packing, mixing and validation reports. No GPU code and no Node built-ins: the same code runs in Node
 * and browsers (Node file helpers are in `@webtune/data/node`).
 */

export { type ConvertedRecord, checkStage, convertRecord } from './formats/convert.js';
export { detectDescription } from './formats/detect.js';
// Formats and the dataset registry
export type {
  Conversation,
  Example,
  KtoExample,
  PreferenceExample,
  PretrainExample,
  Stage,
  SupervisedExample,
  ToolCall,
  ToolDefinition,
  Turn,
  TurnRole,
} from './formats/types.js';
export { EXAMPLE_KIND_OF_STAGE, isPromptSide } from './formats/types.js';
// Problems and reports
export {
  DataConfigError,
  DataError,
  type DataIssue,
  describeValue,
  escapeControlCharacters,
  formatIssue,
  type IssueSeverity,
  type RowLocation,
} from './issues.js';
// Mixing and splitting
export { type MixOptions, type MixResult, type MixStrategy, mixDatasets } from './mixing/mix.js';
export { drawSamples, type Split, splitValidation, takeFirst } from './mixing/sampling.js';
// The pipeline
export { type FileResolver, memoryFileResolver } from './pipeline/file-resolver.js';
export {
  type DatasetSource,
  type LoadedExamples,
  type LoadOptions,
  loadExamples,
  NoValidRowsError,
} from './pipeline/load-examples.js';
export { fillPlaceholders, unfilledPlaceholders } from './pipeline/placeholders.js';
export { type PreparedDataset, type PrepareOptions, prepareDataset } from './pipeline/prepare.js';
// The prompt encoder: every conversation -> token ids goes through it
export {
  type EncodeConversationOptions,
  encodeConversation,
} from './prompt/encode-conversation.js';
export { PromptEncoder, type PromptEncoderOptions } from './prompt/prompt-encoder.js';
export { SeededRandom } from './random.js';
// Readers
export {
  type ByteLine,
  type ByteSource,
  byteChunks,
  byteLines,
  invalidUtf8Offsets,
  readAllBytes,
} from './readers/bytes.js';
export { parseCsvRecords } from './readers/csv.js';
export { readCsvLines } from './readers/csv-stream.js';
export { readJsonLines, readTextLines, type StreamReadOptions } from './readers/json-lines.js';
export { type ReadRecordsOptions, readRecords } from './readers/read-records.js';
export {
  emptyReadStatistics,
  type FileKind,
  fileKindOf,
  type RawRecord,
  type ReadStatistics,
  type RecordIssue,
  type RecordResult,
} from './readers/records.js';
export {
  type DatasetAttributes,
  type DatasetColumns,
  type DatasetOrigin,
  type DatasetTags,
  DEFAULT_COLUMNS,
  type Formatting,
  OPENAI_TAGS,
  SHAREGPT_TAGS,
} from './registry/dataset-attributes.js';
export {
  attributesFromRecord,
  type DatasetInfo,
  localDatasetNames,
  parseDatasetInfo,
  resolveDatasetAttributes,
} from './registry/dataset-info.js';
export { formatPreview, type PreviewEntry, type PreviewSegment, previewSequence } from './report/preview.js';
export { percentile, type TokenStatistics, tokenStatistics } from './report/token-statistics.js';
export {
  type DatasetReport,
  type FormatReportOptions,
  formatValidationReport,
  summarizeIssues,
  type ValidationReport,
} from './report/validation-report.js';
export {
  ExampleStream,
  type StreamOptions,
  type StreamPosition,
  type StreamSettings,
  streamExamples,
} from './streaming/example-stream.js';
export { type ItemReference, ShuffleBuffer, type ShuffleBufferState } from './streaming/shuffle-buffer.js';
export { JinjaChatTemplate, type JinjaTemplateOptions } from './templates/jinja-template.js';
// LLaMA-Factory templates
export {
  canonicalTemplateName,
  llamaFactoryTemplate,
  TEMPLATE_NAMES,
} from './templates/llama-factory/index.js';
export {
  type EncodedTurns,
  type EncodeMode,
  LlamaFactoryTemplate,
  type LlamaFactoryTemplateOptions,
  type TemplateEncodeOptions,
} from './templates/llama-factory/llama-factory-template.js';
export { parseChatTemplate } from './templates/llama-factory/parse-template.js';
export {
  BOS,
  EOS,
  type ResolvedDefinition,
  resolveDefinition,
  type Slot,
  type TemplateDefinition,
  type TemplateKind,
  type ToolFormatName,
  token,
} from './templates/llama-factory/slots.js';
export {
  type FunctionCall,
  TOOL_FORMAT_NAMES,
  type ToolFormat,
} from './templates/llama-factory/tool-formats.js';
export {
  type ChatMessage,
  type ChatMessages,
  toChatMessages,
  withoutReasoning,
} from './templates/messages.js';
export { pythonJsonDumps } from './templates/python-json.js';
export {
  PARSED_TEMPLATE_NAME,
  type ResolveTemplateOptions,
  resolveChatTemplate,
} from './templates/resolve.js';
// Chat templates
export {
  type ChatTemplate,
  type RenderedConversation,
  type RenderOptions,
  renderText,
  SegmentWriter,
  TemplateError,
  type TemplateSegment,
  type TemplateTokens,
} from './templates/types.js';
export {
  type Batch,
  type BucketOptions,
  type CollateOptions,
  collate,
  lengthBucketBatches,
  paddingCost,
} from './tokenize/batching.js';
export {
  type EncodedExample,
  type EncodedKto,
  type EncodedPreference,
  type EncodedPretrain,
  type EncodedPretrainSet,
  type EncodedSupervised,
  type EncodeOptions,
  encodeKto,
  encodePreference,
  encodePretrain,
  encodeSupervised,
  type PretrainOptions,
  type TokenizedKto,
  tokenizeKto,
} from './tokenize/encode-examples.js';
export {
  greedyKnapsack,
  type PackedSequence,
  type PackingOptions,
  packSequences,
  segmentAttentionMask,
} from './tokenize/packing.js';
export {
  type AssembledSequence,
  assembleSupervised,
  type LabelledSequence,
  type MaskOptions,
  segmentPairs,
  type TokenPair,
  tokenizeSegments,
} from './tokenize/supervised.js';
// Tokenization, masks, packing, batching
export { IGNORE_INDEX, type TokenizerLike, templateTokensOf, tokenText } from './tokenize/tokenizer-like.js';
export { truncatedLengths } from './tokenize/truncation.js';
