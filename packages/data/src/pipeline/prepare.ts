/**
 * The whole data step: load and check datasets, then render them with the chat template, tokenize,
 * mask, truncate to `cutoffLen` and (optionally) pack, and fill the report with token statistics and a
 * preview of trained tokens.
 */
import type { Example, KtoExample, PretrainExample } from '../formats/types.js';
import { DataError, type DataIssue } from '../issues.js';
import { PromptEncoder } from '../prompt/prompt-encoder.js';
import { formatPreview, type PreviewEntry, previewSequence } from '../report/preview.js';
import { type LengthRecord, tokenStatistics } from '../report/token-statistics.js';
import type { ValidationReport } from '../report/validation-report.js';
import { LlamaFactoryTemplate } from '../templates/llama-factory/llama-factory-template.js';
import { hasReasoning } from '../templates/messages.js';
import { type ChatTemplate, TemplateError } from '../templates/types.js';
import {
  type EncodedExample,
  type EncodedSupervised,
  type EncodeOptions,
  encodeKto,
  encodePreference,
  encodePretrain,
  encodeSupervised,
  type TokenizedKto,
  tokenizeKto,
} from '../tokenize/encode-examples.js';
import { type PackedSequence, packSequences } from '../tokenize/packing.js';
import type { LabelledSequence } from '../tokenize/supervised.js';
import { IGNORE_INDEX, type TokenizerLike } from '../tokenize/tokenizer-like.js';
import { type LoadOptions, loadExamples } from './load-examples.js';

/** Options of `prepareDataset`: loading options plus tokenization. */
export interface PrepareOptions extends LoadOptions {
  tokenizer: TokenizerLike;
  /**
   * A LLaMA-Factory template name, `auto` (the tokenizer's Jinja template), Jinja text, a `ChatTemplate`,
   * or undefined for LLaMA-Factory's choice (see `PromptEncoder`).
   */
  template?: string | ChatTemplate;
  /** Thinking switch of reasoning templates (LLaMA-Factory's `enable_thinking`). */
  enableThinking?: boolean;
  /** LLaMA-Factory's `default_system`. */
  defaultSystem?: string;
  /** LLaMA-Factory's `tool_format`. */
  toolFormat?: string;
  /** Longest sequence in tokens (LLaMA-Factory's rule decides what is cut). Default 2048. */
  cutoffLen?: number;
  trainOnPrompt?: boolean;
  maskHistory?: boolean;
  /**
   * sft: pack examples as LLaMA-Factory does (greedy knapsack; examples cut to and packed into
   * `cutoffLen - 1` tokens, its rule); `train` and `validation` then hold the packed rows. pt:
   * concatenate into blocks (default on).
   */
  packing?: boolean;
  /** sft packing without attention across the packed examples (LLaMA-Factory's neat_packing; implies packing). */
  neatPacking?: boolean;
  /** Examples shown in the report's preview. Default 3. */
  previewCount?: number;
}

/** Encoded train and validation sets and the full report. */
export interface PreparedDataset {
  train: EncodedExample[];
  validation: EncodedExample[];
  /** SFT with packing: the packed sequences (segment ids keep examples apart). */
  packed?: { train: PackedSequence[]; validation: PackedSequence[] };
  template?: ChatTemplate;
  report: ValidationReport;
}

/** Loads, checks and encodes datasets for a stage; the report explains every row not used. */
export async function prepareDataset(options: PrepareOptions): Promise<PreparedDataset> {
  const loaded = await loadExamples(options);
  const { report } = loaded;
  const cutoffLen = options.cutoffLen ?? 2048;
  report.cutoffLen = cutoffLen;

  if (options.stage === 'pt') {
    const packing = options.packing ?? true;
    const encode = (examples: Example[]) =>
      encodePretrain(examples as PretrainExample[], { tokenizer: options.tokenizer, cutoffLen, packing });
    const train = encode(loaded.train);
    const validation = encode(loaded.validation);
    const lengths: LengthRecord[] = train.documentLengths.map((length) => ({
      fullLength: length,
      length,
      trainedTokens: length,
    }));
    report.tokens = tokenStatistics(lengths, cutoffLen);
    report.tokens.truncated = train.truncatedDocuments;
    report.tokens.truncatedTokens = train.truncatedTokens;
    report.tokens.totalTokens -= train.truncatedTokens;
    report.tokens.trainedTokens -= train.truncatedTokens;
    report.blocks = train.blocks.length;
    report.preview = train.blocks
      .slice(0, options.previewCount ?? 3)
      .map((block) => previewSequence(block, options.tokenizer, block.documents[0]));
    return { train: train.blocks, validation: validation.blocks, report };
  }

  const { template } = new PromptEncoder(options.tokenizer, {
    template: options.template,
    enableThinking: options.enableThinking,
    defaultSystem: options.defaultSystem,
    toolFormat: options.toolFormat,
  });
  if (options.trainOnPrompt && template instanceof LlamaFactoryTemplate && template.definition.efficientEos) {
    throw new TemplateError(`the ${template.name} template (efficient_eos) does not support train_on_prompt`);
  }
  report.template = template.name;
  const packing = options.stage === 'sft' && (options.packing === true || options.neatPacking === true);
  const encodeOptions: EncodeOptions = {
    template,
    tokenizer: options.tokenizer,
    // LLaMA-Factory packs into cutoff_len - 1 tokens (its DataArguments lowers cutoff_len by one).
    cutoffLen: packing ? cutoffLen - 1 : cutoffLen,
    trainOnPrompt: options.trainOnPrompt,
    maskHistory: options.maskHistory,
  };
  const train = encodeAll(loaded.train, encodeOptions, options, report);
  const validation = encodeAll(loaded.validation, encodeOptions, options, report);
  if (train.length === 0) {
    throw new DataError({
      severity: 'error',
      file: report.datasets.map((dataset) => dataset.file).join(', '),
      field: '(dataset)',
      expected: `rows the ${template.name} template can encode`,
      got: 'none',
      detail: report.rejected[report.rejected.length - 1]?.detail,
    });
  }
  report.tokens = tokenStatistics(train.map(lengthRecord), cutoffLen);
  report.preview = train
    .slice(0, options.previewCount ?? 3)
    .map((example) => previewSequence(previewTarget(example), options.tokenizer, example.location));

  if (packing) {
    const pack = (rows: typeof train) =>
      packSequences(rows as LabelledSequence[], { maxLength: encodeOptions.cutoffLen! });
    const packed = { train: pack(train), validation: pack(validation) };
    const neat = options.neatPacking === true;
    return {
      train: packedRows(packed.train, train, neat),
      validation: packedRows(packed.validation, validation, neat),
      packed,
      template,
      report,
    };
  }
  return { train, validation, template, report };
}

/** Packed sequences as SFT rows for the trainer: positions restart per example; segment ids only when neat. */
function packedRows(
  packs: readonly PackedSequence[],
  examples: readonly Exclude<EncodedExample, { kind: 'pretrain' }>[],
  neat: boolean,
): EncodedSupervised[] {
  return packs.map((pack) => ({
    kind: 'supervised',
    inputIds: pack.inputIds,
    labels: pack.labels,
    positionIds: pack.positionIds,
    attentionSegmentIds: neat ? pack.segmentIds : undefined,
    members: pack.members.map((member) => examples[member].location),
    location: examples[pack.members[0]].location,
    fullLength: pack.inputIds.length,
    length: pack.inputIds.length,
    warnings: [],
  }));
}

/** Encodes examples with the template; rows it cannot render go to `report.rejected` (used by streaming too). */
export function encodeAll(
  examples: Example[],
  encodeOptions: EncodeOptions,
  options: PrepareOptions,
  report: ValidationReport,
): Exclude<EncodedExample, { kind: 'pretrain' }>[] {
  const encoded: Exclude<EncodedExample, { kind: 'pretrain' }>[] = [];
  const tokenizedKto: TokenizedKto[] = [];
  for (const example of examples) {
    if (
      options.enableThinking === false &&
      example.kind !== 'pretrain' &&
      hasReasoning(example.conversation.turns)
    ) {
      report.warnings.push({
        severity: 'warning',
        ...example.location,
        field: '(assistant turns)',
        expected: 'no reasoning blocks while thinking is off',
        got: 'a <think> block, which was removed',
      });
    }
    try {
      let result: Exclude<EncodedExample, { kind: 'pretrain' }> | undefined;
      switch (example.kind) {
        case 'supervised':
          result = encodeSupervised(example, encodeOptions);
          break;
        case 'preference':
          result = encodePreference(example, encodeOptions);
          break;
        case 'kto':
          tokenizedKto.push(tokenizeKto(example as KtoExample, encodeOptions));
          break;
        case 'pretrain':
          throw new Error('pretraining examples are encoded as blocks');
      }
      const warnings = result?.warnings ?? tokenizedKto[tokenizedKto.length - 1]?.warnings ?? [];
      for (const warning of warnings) {
        report.warnings.push({
          severity: 'warning',
          ...example.location,
          field: '(template)',
          expected: 'every part of the conversation rendered',
          detail: warning,
        });
      }
      if (result) encoded.push(result);
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      const issue: DataIssue = {
        severity: 'error',
        ...example.location,
        field: error.turn !== undefined ? `turns[${error.turn}]` : '(conversation)',
        expected: `a conversation the ${encodeOptions.template.name} template can render`,
        detail: error.message,
      };
      if (options.strict) throw new DataError(issue);
      report.rejected.push(issue);
      const dataset = report.datasets.find((item) => item.name === example.location.dataset);
      if (dataset) {
        dataset.rowsRejectedByTemplate++;
        dataset.rowsKept--;
        dataset.rowsRejected++;
      }
    }
  }
  if (tokenizedKto.length > 0) encoded.push(...encodeKto(tokenizedKto, encodeOptions));
  return encoded;
}

function previewTarget(example: Exclude<EncodedExample, { kind: 'pretrain' }>): LabelledSequence {
  return example.kind === 'preference' ? example.chosen : example;
}

function trainedCount(sequence: LabelledSequence): number {
  let count = 0;
  for (const label of sequence.labels) if (label !== IGNORE_INDEX) count++;
  return count;
}

function lengthRecord(example: Exclude<EncodedExample, { kind: 'pretrain' }>): LengthRecord {
  const trainedTokens =
    example.kind === 'preference'
      ? Math.max(trainedCount(example.chosen), trainedCount(example.rejected))
      : trainedCount(example);
  return { fullLength: example.fullLength, length: example.length, trainedTokens };
}

export { formatPreview, type PreviewEntry };
