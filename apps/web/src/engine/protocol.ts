/*
 * Messages between the page and the engine worker. The page sends a request with an id; the worker
 * answers with events tagged with that id (progress, streamed tokens, trainer events) and one final
 * reply. Everything here is structured-cloneable (File and Blob included), so it crosses
 * postMessage as is.
 */
import type { ValidationReport } from '@webtune/data';
import type { ForgettingReport, GenerationMetrics } from '@webtune/eval';
import type { TrainableSummary } from '@webtune/peft';
import type { DeviceInfo } from '@webtune/tensors';
import type { MemoryPlan, TrainerEvent, TrainerLogRow } from '@webtune/train';

/** Training stages the board offers (LLaMA-Factory's `stage`). */
export type StageName = 'sft' | 'dpo' | 'kto' | 'rm' | 'ppo' | 'pt';

/**
 * The board's settings are LLaMA-Factory config keys (`stage`, `finetuning_type`, `lora_rank`,
 * `learning_rate`, ...): the worker hands them to @webtune/train's planner, as `webtune train`
 * does with a YAML file.
 */
export type BoardConfig = Record<string, unknown>;

/** How datasets are read and tokenized: stage, template, cutoff_len, val_size, max_samples. */
export interface DataSettings {
  stage: StageName;
  config: BoardConfig;
  /** Datasets by their names in the files' dataset_info.json (a picked data folder); absent: each file is a dataset. */
  named?: string[];
}

/** A run: its config, its folder in the origin-private file system, and whether it resumes. */
export interface TrainSettings {
  config: BoardConfig;
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
  /** Problems a run would have with this model (no tokenizer_config.json: no EOS token). */
  warnings?: string[];
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
  | { kind: 'load-model'; files: Record<string, Blob>; location: string; baseFormat?: BaseStorage }
  | { kind: 'load-model-url'; url: string }
  | { kind: 'estimate-memory'; config: BoardConfig; batchSize: number; sequenceLength: number }
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
  | { kind: 'export'; what: 'adapter' | 'merged' }
  // Run lifecycle across reloads (run-state.ts).
  | { kind: 'run-state'; runName: string }
  | { kind: 'restore-run'; runName: string }
  | WebappRequest;

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
  'run-state': RunState;
  'restore-run': { runName: string; step: number };
}

/** What a run left in this browser's private storage (read again after a reload). */
export interface RunState {
  runName: string;
  /** Complete checkpoints, oldest first. */
  checkpoints: string[];
  /** Optimizer steps of the newest checkpoint. */
  lastStep: number;
  /** Steps the run was planned for (0: unknown). */
  totalSteps: number;
  /** The run reached its last step: nothing is left to resume. */
  completed: boolean;
  /** The run's folder holds the adapter files written at completion. */
  hasResult: boolean;
  /** The rows of its trainer_log.jsonl (the chart's history). */
  log: TrainerLogRow[];
}

/** The webapp block's replies join the ones above (interface merging keeps the two blocks apart). */
export interface EngineReplies extends WebappReplies {}

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

/* ---- Model, Chat, Evaluate and Export: hub models, GGUF, the memory plan, chat turns,
 * adapters and checkpoints, predictions and export bundles (issues #14, #15, #18). ---- */

/** How the frozen base is held on the device: f32, half precision, or ggml Q8_0/Q4_0 blocks. */
export type BaseStorage = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k';

/** A model on a Hugging Face hub (or a mirror in its URL layout: its API and `{repo}/resolve/{commit}/{file}`). */
export interface HubModel {
  baseUrl: string;
  repo: string;
  revision: string;
  /** An access token for private or gated models (what HF_TOKEN is to the CLI). */
  token?: string;
}

/** The memory plan of a run for the loaded model, against this adapter and a browser tab. */
export interface MemoryPlanReply {
  /** Null when the config itself is refused (see problems). */
  plan: MemoryPlan | null;
  baseFormat: BaseStorage;
  /** `software` when WebGPU runs on the CPU (SwiftShader, lavapipe): every step is slow there. */
  adapterClass: string;
  /** Why the config itself is refused (a bad quantization combination), before any planning. */
  problems: string[];
}

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

export interface ChatSettings extends GenerateSettings {
  /** The system prompt ('' for the template's default). */
  system: string;
  /** Show special tokens (`<|im_end|>`, `</s>`) in the answer instead of hiding them. */
  showSpecialTokens: boolean;
}

/** Where the tuned model's adapter comes from. */
export type AdapterSource =
  | { kind: 'none' }
  | { kind: 'checkpoint'; runName: string; checkpoint: string }
  | { kind: 'upload'; name: string; files: Record<string, Blob> };

export interface RunCheckpoints {
  runName: string;
  checkpoints: string[];
}

export interface ExportBundleOptions {
  format: 'adapter' | 'merged' | 'gguf';
  /** Safetensors dtype of a merged model. */
  dtype: 'F32' | 'F16' | 'BF16';
  /** Largest safetensors shard of a merged model, in bytes. */
  maxShardBytes: number;
  /** GGUF storage type of the model file. */
  ggufType: 'F16' | 'BF16' | 'F32' | 'Q8_0' | 'Q4_0' | 'Q4_K_M';
  /** Keep the adapter as a GGUF LoRA file beside an unmerged base (llama.cpp `--lora`, Ollama ADAPTER). */
  ggufAdapter: boolean;
  /** Base name of the GGUF files and of the Ollama model. */
  name: string;
  /** SYSTEM of the Ollama Modelfile ('' for none). */
  system: string;
}

export interface PredictReply {
  variant: 'base' | 'tuned';
  metrics: GenerationMetrics;
  records: { prompt: string; predict: string; label: string }[];
  seconds: number;
}

export type WebappRequest =
  | { kind: 'load-model-hub'; hub: HubModel; baseFormat?: BaseStorage }
  | { kind: 'cached-hub-models' }
  | { kind: 'memory-plan'; config: BoardConfig }
  | { kind: 'chat'; turns: ChatTurn[]; variant: 'base' | 'tuned'; settings: ChatSettings }
  | { kind: 'stop-generation' }
  | { kind: 'list-adapters' }
  | { kind: 'use-adapter'; source: AdapterSource }
  | { kind: 'checkpoint-files'; runName: string; checkpoint: string }
  | {
      kind: 'predict';
      files: Record<string, Blob>;
      maxSamples: number;
      maxNewTokens: number;
      variant: 'base' | 'tuned';
    }
  | {
      kind: 'forgetting';
      general: Record<string, Blob>;
      domainTexts: string[];
      nShot: number;
      maxQuestions: number;
    }
  | { kind: 'export-bundle'; options: ExportBundleOptions };

export interface WebappReplies {
  'load-model-hub': ModelSummary;
  'cached-hub-models': { models: string[] };
  'memory-plan': MemoryPlanReply;
  chat: { text: string; tokens: number; milliseconds: number; stopped: boolean };
  'stop-generation': { stopping: boolean };
  'list-adapters': { runs: RunCheckpoints[]; current: string };
  'use-adapter': { current: string };
  'checkpoint-files': { files: ExportedFile[] };
  predict: PredictReply;
  forgetting: { report: ForgettingReport; text: string };
  'export-bundle': { files: ExportedFile[]; commands: string[] };
}
