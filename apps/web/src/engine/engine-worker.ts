/*
 * The engine: a Web Worker that owns the WebGPU device, the model, the prepared data and the
 * training run, so the page stays responsive while the GPU works. It parses requests, calls the
 * packages and reports back; the training logic itself is @webtune/train's.
 */
import {
  type ChatTemplate,
  type Conversation,
  type EncodedExample,
  memoryFileResolver,
  PromptEncoder,
} from '@webtune/data';
import { evaluateMcq, loadMcqTask } from '@webtune/eval';
import {
  type CausalLM,
  generate,
  memoryFileSource,
  type PretrainedModel,
  perplexity,
  saveModel,
} from '@webtune/nn';
import { estimateTrainingMemory, loadAdapter, type PeftModel, saveAdapter } from '@webtune/peft';
import { createDevice, type Device } from '@webtune/tensors';
import { applyMethod, createTask, type RunPlan, rowKindsOf, type TrainerEvent, train } from '@webtune/train';
import { boardTemplate, planInBrowser, prepareBrowserData, trainingMethodOf } from './browser-plan.js';
import { memorySink } from './memory-sink.js';
import { modelWarnings, recordedNameOf, withBaseName } from './model-facts.js';
import { listCheckpointsOf, opfsStorage, removeRun } from './opfs-storage.js';
import { runPpoInBrowser } from './ppo-run.js';
import type {
  BaseStorage,
  DataSettings,
  EngineEnvelope,
  EngineEvent,
  EngineMessage,
  EngineReplies,
  EngineRequest,
  ExportedFile,
  ModelSummary,
} from './protocol.js';
import { readRunResult, readRunState } from './run-state.js';
import { downloadModelFolder } from './url-source.js';
import {
  openBase,
  refuseRunThatCannotFit,
  WEBAPP_USES_MODEL,
  WEBAPP_WHAT,
  webappHandlers,
} from './webapp-engine.js';

export interface LoadedModel {
  files: Map<string, Blob>;
  location: string;
  pretrained: PretrainedModel;
  /** base_model_name_or_path of exported adapters; undefined when the picked files do not say. */
  baseName: string | undefined;
  /** How the frozen base is held (f32, f16, bf16, q8_0, q4_0); a GGUF's Q8_0/Q4_0 stay packed. */
  baseFormat: BaseStorage;
}

interface PreparedData {
  settings: DataSettings;
  /** The file names the rows came from. */
  datasets: string[];
  train: EncodedExample[];
  validation: EncodedExample[];
  template: ChatTemplate | undefined;
}

export const session = {
  device: null as Promise<Device> | null,
  loaded: null as LoadedModel | null,
  /** Adapters added by the last run (LoRA, DoRA, bottleneck); null before training or for freeze/full. */
  peft: null as PeftModel | null,
  /** Freeze and full tuning changed the loaded weights: `baseCopy` holds the original for comparisons. */
  baseChanged: false,
  baseCopy: null as CausalLM | null,
  data: null as PreparedData | null,
  training: null as AbortController | null,
};

export type Emit = (event: EngineEvent) => void;
type Handler<K extends EngineRequest['kind']> = (
  request: Extract<EngineRequest, { kind: K }>,
  emit: Emit,
) => Promise<EngineReplies[K]>;

/** The one device of the worker, created on first use (concurrent first calls share it). */
export function device(): Promise<Device> {
  session.device ??= createDevice();
  return session.device;
}

export function requireModel(): LoadedModel {
  if (!session.loaded) throw new Error('no model is loaded: load one in the Model tab first');
  return session.loaded;
}

export async function loadFiles(
  files: Map<string, Blob>,
  location: string,
  emit: Emit,
  baseFormat: BaseStorage = 'f32',
): Promise<ModelSummary> {
  if (session.training)
    throw new Error('a training run is in progress: stop it before loading another model');
  disposeModel();
  // Loose files picked without their folder: the name config.json records, if any.
  const recorded = location === '' ? await recordedNameOf(files) : undefined;
  const baseName = location === '' ? recorded : location;
  location = location === '' ? (recorded ?? 'picked files') : location;
  const loading = { files, location, baseFormat };
  const pretrained = await openBase(loading, {
    onProgress: (progress) =>
      emit({
        type: 'progress',
        label: `placing ${progress.name}`,
        done: progress.loaded,
        total: progress.total,
      }),
  });
  session.loaded = { ...loading, pretrained, baseName };
  session.data = null;
  return summarize(session.loaded);
}

function disposeModel(): void {
  session.peft = null;
  session.baseChanged = false;
  session.baseCopy?.dispose();
  session.baseCopy = null;
  session.loaded?.pretrained.model.dispose();
  session.loaded = null;
}

export function summarize({ pretrained, location }: LoadedModel): ModelSummary {
  const { config, model, tokenizer } = pretrained;
  let parameters = 0;
  let weightBytes = 0;
  let largestTensorBytes = 0;
  const seen = new Set<unknown>();
  for (const [, tensor] of model.namedParameters()) {
    if (seen.has(tensor)) continue;
    seen.add(tensor);
    parameters += tensor.size;
    weightBytes += tensor.byteLength;
    largestTensorBytes = Math.max(largestTensorBytes, tensor.byteLength);
  }
  return {
    location,
    architecture: config.architecture,
    modelType: config.modelType,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    layers: config.numHiddenLayers,
    attentionHeads: config.numAttentionHeads,
    keyValueHeads: config.numKeyValueHeads,
    vocabSize: config.vocabSize,
    maxPositions: config.maxPositionEmbeddings,
    tiedEmbeddings: config.tieWordEmbeddings,
    parameters,
    weightBytes,
    hasTokenizer: tokenizer !== null,
    hasChatTemplate: Boolean(tokenizer?.chatTemplate),
    warnings: modelWarnings(pretrained),
    largestTensorBytes,
  };
}

export function tokenizerOf(loaded: LoadedModel) {
  const tokenizer = loaded.pretrained.tokenizer;
  if (!tokenizer) throw new Error(`${loaded.location} has no tokenizer.json: the board needs one`);
  return tokenizer;
}

/** The template to use: the one named, else LLaMA-Factory's choice (the chat_template parsed, else empty). */
function chatTemplate(loaded: LoadedModel, name: string | undefined): ChatTemplate {
  return boardTemplate(tokenizerOf(loaded), name);
}

/**
 * The prompt encoder (shared with the CLI and training): the template the data was prepared with, else
 * a named one; `''` or undefined is LLaMA-Factory's choice (the model's chat_template parsed, else empty).
 */
export function promptEncoder(
  loaded: LoadedModel,
  template: string | ChatTemplate | undefined,
): PromptEncoder {
  return new PromptEncoder(tokenizerOf(loaded), { template: template === '' ? undefined : template });
}

/** The model a request names: the tuned model, or the base (adapters off, or the untouched copy). */
export async function withVariant<R>(
  variant: 'base' | 'tuned',
  fn: (model: CausalLM) => Promise<R>,
): Promise<R> {
  const loaded = requireModel();
  const model = loaded.pretrained.model;
  if (variant === 'tuned') return fn(model);
  if (session.peft) return session.peft.withAdaptersDisabled(() => fn(model));
  if (session.baseChanged) {
    if (!session.baseCopy) {
      const copy = await openBase(loaded);
      session.baseCopy = copy.model;
    }
    return fn(session.baseCopy);
  }
  return fn(model);
}

/*
 * Requests that use the model run one at a time: two interleaved async calls would share the
 * adapters' on/off switch (the base variant turns them off until it settles). While a run trains,
 * they are refused at once rather than queued behind it; `stop-training`, `device`,
 * `estimate-memory` and `list-checkpoints` always answer.
 */
const USES_MODEL: ReadonlySet<EngineRequest['kind']> = new Set([
  'load-model',
  'load-model-url',
  'prepare-data',
  'train',
  'generate',
  'perplexity',
  'mcq',
  'export',
  'restore-run',
]);
const WHAT: Partial<Record<EngineRequest['kind'], string>> = {
  'load-model': 'loading a model',
  'load-model-url': 'loading a model',
  'prepare-data': 'checking data',
  generate: 'chat',
  perplexity: 'evaluation',
  mcq: 'evaluation',
  export: 'export',
  'restore-run': 'using a run’s result',
};
let modelQueue: Promise<unknown> = Promise.resolve();

function run<T>(kind: EngineRequest['kind'], task: () => Promise<T>): Promise<T> {
  if (!USES_MODEL.has(kind) && !WEBAPP_USES_MODEL.has(kind)) return task();
  if (session.training) {
    throw new Error(
      kind === 'train'
        ? 'a training run is already in progress'
        : `${WHAT[kind] ?? WEBAPP_WHAT[kind]} waits for the training run: pause or stop it first`,
    );
  }
  const result = modelQueue.then(task, task);
  modelQueue = result.catch(() => undefined);
  return result;
}

/*
 * Run lifecycle across reloads: what a run left in OPFS, and a completed run's adapter put back on
 * the loaded model (so Chat, Evaluate and Export use it without training again).
 */
const lifecycleHandlers: { 'run-state': Handler<'run-state'>; 'restore-run': Handler<'restore-run'> } = {
  async 'run-state'(request) {
    return readRunState(request.runName);
  },
  async 'restore-run'(request, emit) {
    const loaded = requireModel();
    const state = await readRunState(request.runName);
    const files = await readRunResult(request.runName);
    await resetModel(loaded, emit);
    session.peft = await loadAdapter(loaded.pretrained.model, memoryFileSource(files, request.runName));
    return { runName: request.runName, step: state.lastStep };
  },
};

const coreHandlers: Omit<{ [K in EngineRequest['kind']]: Handler<K> }, keyof WebappHandlers> = {
  ...lifecycleHandlers,

  async device() {
    return (await device()).info;
  },

  async 'load-model'(request, emit) {
    return loadFiles(new Map(Object.entries(request.files)), request.location, emit, request.baseFormat);
  },

  async 'load-model-url'(request, emit) {
    const files = await downloadModelFolder(request.url, (name, loaded, total) =>
      emit({ type: 'progress', label: `downloading ${name}`, done: loaded, total }),
    );
    return loadFiles(files, request.url, emit);
  },

  async 'estimate-memory'(request) {
    const loaded = requireModel();
    const { config } = loaded.pretrained;
    const plan = planInBrowser(request.config, {
      location: loaded.location,
      datasets: [],
      runName: 'estimate',
    });
    const summary = estimateTrainingMemory(config, trainingMethodOf(plan.method));
    // Activations kept for backward, per token and layer: the residual stream, norms, q/k/v/o and
    // the MLP's gate, up and product; plus one chunk of logits. A rough figure, in float32.
    const tokens = request.batchSize * request.sequenceLength;
    const perLayer = 10 * config.hiddenSize + 3 * config.intermediateSize;
    const activationBytes = 4 * tokens * (config.numHiddenLayers * perLayer + 2 * config.vocabSize);
    const limits = (await device()).info.limits;
    return {
      summary,
      activationBytes,
      limits: {
        maxBufferSize: limits.maxBufferSize ?? 0,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? 0,
      },
    };
  },

  async 'prepare-data'(request, emit) {
    const loaded = requireModel();
    const tokenizer = tokenizerOf(loaded);
    const { settings } = request;
    const datasets = settings.named?.length ? settings.named : Object.keys(request.files);
    // A failed check leaves no data active: the previous data is dropped before this one is read.
    session.data = null;
    // The data of a PPO run is planned before its reward model is named (the Train tab names it).
    const rewardModel = settings.stage === 'ppo' ? { reward_model: 'chosen-in-the-train-tab' } : {};
    const plan = planInBrowser(
      { ...rewardModel, ...settings.config, stage: settings.stage },
      { location: loaded.location, datasets, runName: 'data' },
    );
    emit({ type: 'progress', label: 'reading and tokenizing', done: 0, total: 1 });
    const template = plan.data.usesTemplate
      ? chatTemplate(loaded, plan.data.template ?? undefined)
      : undefined;
    const prepared = await prepareBrowserData(plan, request.files, tokenizer, template, settings.named);
    emit({ type: 'progress', label: 'reading and tokenizing', done: 1, total: 1 });
    session.data = { settings, datasets, train: prepared.train, validation: prepared.validation, template };
    const lengths = prepared.train.map((example) =>
      'fullLength' in example ? example.fullLength : example.inputIds.length,
    );
    return {
      report: prepared.report,
      trainRows: prepared.train.length,
      validationRows: prepared.validation.length,
      lengths,
      stage: settings.stage,
    };
  },

  async train(request, emit) {
    const loaded = requireModel();
    const data = session.data;
    const { settings } = request;
    if (session.training) throw new Error('a training run is already in progress');
    if (!data) throw new Error('no data is prepared: check a dataset in the Data tab first');
    const stage = settings.config.stage ?? 'sft';
    if (data.settings.stage !== stage) {
      throw new Error(
        `the data was prepared for stage ${data.settings.stage}; prepare it again for ${stage} in the Data tab`,
      );
    }
    if (stage === 'ppo' && !settings.config.reward_model) {
      throw new Error(
        'reward_model: stage ppo needs a reward model; train one with stage Reward model, then name its run in the Train tab',
      );
    }
    // The data tab's keys (cutoff_len, template, ...) and the train tab's make the run's config.
    const plan: RunPlan = planInBrowser(
      { ...data.settings.config, ...settings.config },
      { location: loaded.location, datasets: data.datasets, runName: settings.runName },
    );
    await refuseRunThatCannotFit(loaded, plan);
    await resetModel(loaded, emit);
    const applied = await applyMethod(loaded.pretrained.model, withBaseName(plan.method, loaded.baseName), {
      seed: plan.config.seed,
    });
    session.peft = applied.peft;
    session.baseChanged = applied.changesBaseWeights;
    if (!settings.resume) await removeRun(settings.runName);
    const storage = await opfsStorage(settings.runName);
    const controller = new AbortController();
    session.training = controller;
    const kinds = rowKindsOf(plan.task);
    try {
      if (plan.task.type === 'ppo') {
        if (!applied.peft) throw new Error('stage ppo trains a LoRA policy: choose LoRA as the method');
        if (settings.resume) throw new Error('a PPO run keeps no checkpoints to resume: Start runs it again');
        const prompts = promptEncoder(loaded, data.template);
        return await runPpoInBrowser({
          loaded,
          plan,
          peft: applied.peft,
          trainable: applied.trainable,
          rows: data.train.filter((row) => kinds.includes(row.kind)),
          padTokenId: tokenizerOf(loaded).padTokenId ?? 0,
          stopTokens: [
            ...new Set([...loaded.pretrained.model.config.eosTokenIds, ...prompts.stopTokenIds()]),
          ],
          runName: settings.runName,
          signal: controller.signal,
          emit: (event) => emit({ type: 'trainer', event }),
          log: (line) => emit({ type: 'log', line }),
        });
      }
      const result = await train({
        model: applied.trainable,
        task: createTask(plan.task, {
          padTokenId: tokenizerOf(loaded).padTokenId ?? 0,
          seed: plan.config.seed,
          logitsChunkRows: plan.logitsChunkRows,
        }),
        train: data.train.filter((row) => kinds.includes(row.kind)) as unknown[],
        validation: data.validation.filter((row) => kinds.includes(row.kind)) as unknown[],
        args: {
          ...plan.trainingArguments,
          resumeFromCheckpoint: settings.resume ? true : null,
          // base_model_name_or_path of the adapter files the run writes: never a made-up name.
          modelNameOrPath: loaded.baseName ?? null,
        },
        storage,
        signal: controller.signal,
        onEvent: (event: TrainerEvent) => emit({ type: 'trainer', event }),
      });
      return { reason: result.reason, steps: result.steps, lastCheckpoint: result.lastCheckpoint };
    } finally {
      session.training = null;
    }
  },

  async 'stop-training'() {
    const running = session.training;
    running?.abort();
    return { stopping: running !== null };
  },

  async 'list-checkpoints'(request) {
    return { checkpoints: await listCheckpointsOf(request.runName) };
  },

  async generate(request, emit) {
    const loaded = requireModel();
    const tokenizer = tokenizerOf(loaded);
    const prompts = promptEncoder(loaded, session.data?.template);
    const conversation: Conversation = { turns: [{ role: 'user', content: request.prompt }] };
    const ids = prompts.encodePrompt(conversation);
    const started = performance.now();
    const { settings } = request;
    const [result] = await withVariant(request.variant, (model) =>
      generate(model, tokenizer, ids, {
        maxNewTokens: settings.maxNewTokens,
        temperature: settings.temperature,
        topP: settings.topP,
        seed: settings.seed,
        stopTokens: [...new Set([...model.config.eosTokenIds, ...prompts.stopTokenIds()])],
        onToken: (event) => {
          if (event.text) emit({ type: 'token', text: event.text });
        },
      }),
    );
    return { text: result.text, tokens: result.tokens.length, milliseconds: performance.now() - started };
  },

  async perplexity(request) {
    const loaded = requireModel();
    const tokenizer = tokenizerOf(loaded);
    const result = await withVariant(request.variant, (model) => perplexity(model, tokenizer, request.text));
    return { perplexity: result.perplexity, meanLoss: result.meanLoss, tokens: result.tokens };
  },

  async mcq(request, emit) {
    const loaded = requireModel();
    const tokenizer = tokenizerOf(loaded);
    // Files arrive with their paths in the picked folder (`mmlu_subset/test/x.csv`): drop the folder name.
    const entries = Object.entries(request.files);
    const top = entries[0]?.[0].split('/')[0] ?? 'task';
    const allUnderTop = entries.every(([name]) => name.startsWith(`${top}/`));
    const files = Object.fromEntries(
      entries.map(([name, file]) => [allUnderTop ? name.slice(top.length + 1) : name, file]),
    );
    const task = await loadMcqTask(memoryFileResolver(files), allUnderTop ? top : 'task');
    const result = await withVariant(request.variant, (model) =>
      evaluateMcq(model, tokenizer, task, {
        nShot: request.nShot,
        limit: request.maxQuestions > 0 ? request.maxQuestions : undefined,
        onProgress: (progress) =>
          emit({ type: 'progress', label: 'scoring questions', done: progress.done, total: progress.total }),
      }),
    );
    return {
      accuracy: result.overall.accuracy,
      questions: result.overall.questions,
      subjects: result.subjects.map((subject) => ({
        name: subject.name,
        accuracy: subject.accuracy,
        questions: subject.questions,
      })),
    };
  },

  async export(request, emit) {
    const loaded = requireModel();
    const sink = memorySink();
    if (request.what === 'adapter') {
      if (!session.peft) {
        throw new Error(
          session.baseChanged
            ? 'freeze and full tuning change the model itself: export the merged model'
            : 'there is no adapter yet: train with LoRA, DoRA or an adapter first',
        );
      }
      await saveAdapter(session.peft, sink, { baseModelNameOrPath: loaded.baseName });
      return { files: sink.files };
    }
    const extraFiles = loaded.pretrained.tokenizerFiles;
    const generationConfig = loaded.pretrained.generationConfig;
    if (!session.peft) {
      await saveModel(loaded.pretrained.model, sink, { extraFiles, generationConfig });
      return { files: sink.files };
    }
    // Merging removes the adapter layers: keep the adapter's files, merge and save, then load the
    // base again and put the adapter back, so chat and export keep working.
    const adapter = memorySink();
    await saveAdapter(session.peft, adapter, { baseModelNameOrPath: loaded.baseName });
    emit({ type: 'progress', label: 'merging', done: 0, total: 2 });
    const merged = session.peft.mergeAndUnload();
    await saveModel(merged, sink, { extraFiles, generationConfig });
    emit({ type: 'progress', label: 'restoring the adapter', done: 1, total: 2 });
    const restored = await openBase(loaded);
    merged.dispose();
    loaded.pretrained = restored;
    session.peft = await loadAdapter(restored.model, memoryFileSource(filesByName(adapter.files), 'adapter'));
    emit({ type: 'progress', label: 'restoring the adapter', done: 2, total: 2 });
    return { files: sink.files };
  },
};

/* ---- Model, Chat, Evaluate and Export conveniences: their handlers live in webapp-engine.ts. ---- */
type WebappHandlers = ReturnType<typeof webappHandlers>;
const handlers = { ...coreHandlers, ...webappHandlers() } as {
  [K in EngineRequest['kind']]: Handler<K>;
};

/** Before a new run: the base weights as loaded, without the adapters of an earlier run. */
export async function resetModel(loaded: LoadedModel, emit: Emit): Promise<void> {
  if (!session.peft && !session.baseChanged) return;
  emit({ type: 'progress', label: 'reloading the base model', done: 0, total: 1 });
  loaded.pretrained.model.dispose();
  session.baseCopy?.dispose();
  session.baseCopy = null;
  session.peft = null;
  session.baseChanged = false;
  loaded.pretrained = await openBase(loaded);
  emit({ type: 'progress', label: 'reloading the base model', done: 1, total: 1 });
}

function filesByName(files: ExportedFile[]): Map<string, Uint8Array> {
  return new Map(files.map((file) => [file.name, file.bytes]));
}

/** Posts to the page (a worker's postMessage takes the same options object as a window's). */
function post(message: EngineMessage, transfer: Transferable[] = []): void {
  self.postMessage(message, { transfer });
}

self.onmessage = async (message: MessageEvent<EngineEnvelope>) => {
  const { id, request } = message.data;
  const emit: Emit = (event) => post({ id, type: 'event', event });
  try {
    const handler = handlers[request.kind] as Handler<typeof request.kind>;
    const value = await run(request.kind, () => handler(request as never, emit));
    // Exported files move to the page without a copy.
    const transfer =
      request.kind === 'export'
        ? [
            ...new Set(
              (value as EngineReplies['export']).files.map((file) => file.bytes.buffer as ArrayBuffer),
            ),
          ]
        : [];
    post({ id, type: 'reply', ok: true, value }, transfer);
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    post({ id, type: 'reply', ok: false, error: { name: failure.name, message: failure.message } });
  }
};
