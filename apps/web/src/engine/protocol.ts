/*
 * Messages between the page and the engine worker. The page sends a request with an id; the worker
 * answers with events tagged with that id (progress, streamed tokens, trainer events) and one final
 * reply. Everything here is structured-cloneable (File and Blob included), so it crosses
 * postMessage as is.
 */
import type { ValidationReport } from '@webtune/data';
import type { TrainableSummary } from '@webtune/peft';
import type { DeviceInfo } from '@webtune/tensors';
import type { TrainerEvent, TrainingArguments } from '@webtune/train';

/** Training stages the board offers (LLaMA-Factory's `stage`). */
export type StageName = 'sft' | 'dpo' | 'pt';

/** Fine-tuning methods the board offers (LLaMA-Factory's `finetuning_type`, DoRA as its own entry). */
export type MethodName = 'lora' | 'dora' | 'adapter' | 'freeze' | 'full';

/** How the chosen method adapts the model. */
export interface MethodSettings {
  method: MethodName;
  /** lora_rank */
  loraRank: number;
  /** lora_alpha */
  loraAlpha: number;
  /** lora_dropout */
  loraDropout: number;
  /** lora_target: `all` or comma-separated module names. */
  loraTarget: string;
  /** Bottleneck width of an adapter. */
  adapterSize: number;
  /** freeze_trainable_layers */
  freezeTrainableLayers: number;
}

/** How datasets are read and tokenized. */
export interface DataSettings {
  stage: StageName;
  /** A LLaMA-Factory template name, `auto` (the tokenizer's Jinja template), or `''` for LLaMA-Factory's choice. */
  template: string;
  cutoffLen: number;
  /** Validation share (below 1) or count. 0: no validation rows. */
  valSize: number;
  /** Keep the first N rows of each dataset; 0 keeps all. */
  maxSamples: number;
}

/** Everything a run needs beyond the loaded model and data. */
export interface TrainSettings {
  stage: StageName;
  method: MethodSettings;
  args: TrainingArguments;
  /** pref_beta and pref_loss for DPO. */
  preference: { beta: number; loss: 'sigmoid' | 'hinge' | 'ipo' };
  /** The run's folder in the origin-private file system. */
  runName: string;
  /** Continue from the newest checkpoint of the run instead of starting over. */
  resume: boolean;
}

/** What the Model tab shows about a loaded model. */
export interface ModelSummary {
  location: string;
  architecture: string;
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  attentionHeads: number;
  keyValueHeads: number;
  vocabSize: number;
  maxPositions: number;
  tiedEmbeddings: boolean;
  parameters: number;
  weightBytes: number;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
  /** Bytes of the largest single weight (an embedding), against the per-binding limit. */
  largestTensorBytes: number;
}

/** The memory a method needs for the loaded model. */
export interface MemoryEstimate {
  summary: TrainableSummary;
  /** A rough figure for activations at the given batch and sequence length. */
  activationBytes: number;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}

/** The data report the Data tab draws. */
export interface DataSummary {
  report: ValidationReport;
  trainRows: number;
  validationRows: number;
  /** Token length of every train example before truncation. */
  lengths: number[];
  stage: StageName;
}

export interface ExportedFile {
  name: string;
  bytes: Uint8Array;
}

export interface GenerateSettings {
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

/** Requests the page sends, by kind. */
export type EngineRequest =
  | { kind: 'device' }
  | { kind: 'load-model'; files: Record<string, Blob>; location: string }
  | { kind: 'load-model-url'; url: string }
  | { kind: 'estimate-memory'; method: MethodSettings; batchSize: number; sequenceLength: number }
  | { kind: 'prepare-data'; files: Record<string, Blob>; settings: DataSettings }
  | { kind: 'train'; settings: TrainSettings }
  | { kind: 'stop-training' }
  | { kind: 'list-checkpoints'; runName: string }
  | { kind: 'generate'; prompt: string; variant: 'base' | 'tuned'; settings: GenerateSettings }
  | { kind: 'perplexity'; text: string; variant: 'base' | 'tuned' }
  | {
      kind: 'mcq';
      files: Record<string, Blob>;
      nShot: number;
      maxQuestions: number;
      variant: 'base' | 'tuned';
    }
  | { kind: 'export'; what: 'adapter' | 'merged' };

/** What each request's reply holds. */
export interface EngineReplies {
  device: DeviceInfo;
  'load-model': ModelSummary;
  'load-model-url': ModelSummary;
  'estimate-memory': MemoryEstimate;
  'prepare-data': DataSummary;
  train: { reason: string; steps: number; lastCheckpoint: string | null };
  'stop-training': { stopping: boolean };
  'list-checkpoints': { checkpoints: string[] };
  generate: { text: string; tokens: number; milliseconds: number };
  perplexity: { perplexity: number; meanLoss: number; tokens: number };
  mcq: McqSummary;
  export: { files: ExportedFile[] };
}

export interface McqSummary {
  accuracy: number;
  questions: number;
  subjects: { name: string; accuracy: number; questions: number }[];
}

/** Events sent while a request runs. */
export type EngineEvent =
  | { type: 'progress'; label: string; done: number; total: number }
  | { type: 'token'; text: string }
  | { type: 'trainer'; event: TrainerEvent }
  | { type: 'log'; line: string };

/** Worker to page. */
export type EngineMessage =
  | { id: number; type: 'event'; event: EngineEvent }
  | { id: number; type: 'reply'; ok: true; value: unknown }
  | { id: number; type: 'reply'; ok: false; error: { name: string; message: string } };

/** Page to worker. */
export interface EngineEnvelope {
  id: number;
  request: EngineRequest;
}
