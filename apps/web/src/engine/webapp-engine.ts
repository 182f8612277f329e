/*
 * The engine's handlers for the Model, Chat, Evaluate and Export conveniences: hub models through
 * the cache, GGUF files, the memory plan, multi-turn chat that can be stopped, adapters from OPFS
 * checkpoints or uploads, predictions with BLEU/ROUGE, the forgetting report and export bundles
 * (safetensors with dtype and shards, GGUF with a Modelfile). They share the worker's session.
 */
import { type Conversation, loadExamples, memoryFileResolver } from '@webtune/data';
import {
  compareMcqResults,
  comparePerplexity,
  evaluateMcq,
  forgettingReport,
  formatForgettingReport,
  loadMcqTask,
  predict,
  predictExamplesFrom,
} from '@webtune/eval';
import {
  type CausalLM,
  generate,
  ggufBundle,
  isGgufPath,
  type LoadWeightsOptions,
  loadGguf,
  loadPretrained,
  memoryFileSource,
  type PretrainedModel,
  perplexity,
  saveModel,
} from '@webtune/nn';
import { loadAdapter, saveAdapter } from '@webtune/peft';
import type { Device } from '@webtune/tensors';
import { BROWSER_TAB_BUDGET, memoryPlanInputOf, planMemory, type planRun } from '@webtune/train';
import { planInBrowser } from './browser-plan.js';
import {
  device,
  type Emit,
  type LoadedModel,
  loadFiles,
  promptEncoder,
  requireModel,
  resetModel,
  session,
  tokenizerOf,
  withVariant,
} from './engine-worker.js';
import { cachedHubModels, downloadHubModel } from './hub-download.js';
import { memorySink } from './memory-sink.js';
import { listCheckpointsOf, listRuns, opfsStorage } from './opfs-storage.js';
import type {
  AdapterSource,
  BaseStorage,
  EngineRequest,
  ExportBundleOptions,
  ExportedFile,
  WebappReplies,
  WebappRequest,
} from './protocol.js';

type WebappHandler<K extends WebappRequest['kind']> = (
  request: Extract<WebappRequest, { kind: K }>,
  emit: Emit,
) => Promise<WebappReplies[K]>;

/** Requests of this block that use the model: they queue behind each other and wait for training. */
export const WEBAPP_USES_MODEL: ReadonlySet<EngineRequest['kind']> = new Set([
  'load-model-hub',
  'chat',
  'use-adapter',
  'predict',
  'forgetting',
  'export-bundle',
]);
export const WEBAPP_WHAT: Partial<Record<EngineRequest['kind'], string>> = {
  'load-model-hub': 'loading a model',
  chat: 'chat',
  'use-adapter': 'choosing an adapter',
  predict: 'prediction',
  forgetting: 'the forgetting report',
  'export-bundle': 'export',
};

const state = {
  /** The running chat answer's stop switch. */
  generation: null as AbortController | null,
  /** What the tuned model is: the last run's adapter, a checkpoint, an upload. */
  adapterLabel: 'the last training run',
};

/**
 * The base model of a loaded model, opened again from its files: a `.gguf` file through
 * @webtune/gguf (read by byte range from the File, Q8_0/Q4_0 projections kept packed unless
 * `keepQuantized` is false), else a Hugging Face folder; the frozen base in `baseFormat`.
 */
export async function openBase(
  loaded: Pick<LoadedModel, 'files' | 'location' | 'baseFormat'>,
  options: Pick<LoadWeightsOptions, 'onProgress'> & {
    baseFormat?: BaseStorage;
    keepQuantized?: boolean;
  } = {},
): Promise<PretrainedModel> {
  const baseFormat = options.baseFormat ?? loaded.baseFormat;
  const gguf = [...loaded.files].find(([name]) => isGgufPath(name));
  if (gguf) {
    return loadGguf(await device(), gguf[1], {
      fileName: gguf[0],
      baseFormat,
      keepQuantized: options.keepQuantized,
      onProgress: options.onProgress,
    });
  }
  return loadPretrained(await device(), memoryFileSource(loaded.files, loaded.location), {
    baseFormat,
    onProgress: options.onProgress,
  });
}

/** How the loaded base is actually held: a GGUF's packed blocks win over the f32 asked for. */
function heldFormat(loaded: LoadedModel): BaseStorage {
  for (const [, weight] of loaded.pretrained.model.namedPackedParameters())
    return weight.format as BaseStorage;
  return loaded.baseFormat;
}

function filesByName(files: ExportedFile[]): Map<string, Uint8Array> {
  return new Map(files.map((file) => [file.name, file.bytes]));
}

async function collect(chunks: AsyncGenerator<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    parts.push(chunk);
    size += chunk.length;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** Puts an adapter (PEFT files by name) on the base as loaded, in place of any earlier one. */
async function applyAdapter(files: Map<string, Blob | Uint8Array>, name: string, emit: Emit): Promise<void> {
  const loaded = requireModel();
  for (const needed of ['adapter_config.json', 'adapter_model.safetensors']) {
    if (!files.has(needed)) {
      throw new Error(
        `${name} has no ${needed}: an adapter is adapter_config.json + adapter_model.safetensors`,
      );
    }
  }
  await resetModel(loaded, emit);
  session.peft = await loadAdapter(loaded.pretrained.model, memoryFileSource(files, name));
  session.baseChanged = false;
}

/**
 * Runs `write` on the model an export writes: the live model when it is already what is wanted,
 * else (an adapter to merge, or a packed base) an f32 copy opened from the files with the adapter
 * merged, while the live model is set aside; the live model and its adapter come back afterwards.
 */
async function withExportModel<R>(
  merge: boolean,
  emit: Emit,
  write: (model: CausalLM, pretrained: PretrainedModel) => Promise<R>,
): Promise<R> {
  const loaded = requireModel();
  const packed = heldFormat(loaded) !== 'f32';
  if (session.baseChanged || (!session.peft && !packed))
    return write(loaded.pretrained.model, loaded.pretrained);
  const adapter = memorySink();
  if (session.peft) await saveAdapter(session.peft, adapter, { baseModelNameOrPath: loaded.baseName });
  emit({ type: 'progress', label: 'opening the base in float32', done: 0, total: 3 });
  loaded.pretrained.model.dispose();
  session.baseCopy?.dispose();
  session.baseCopy = null;
  session.peft = null;
  try {
    const copy = await openBase(loaded, { baseFormat: 'f32', keepQuantized: false });
    let model = copy.model;
    if (merge && adapter.files.length > 0) {
      emit({ type: 'progress', label: 'merging the adapter', done: 1, total: 3 });
      model = (
        await loadAdapter(copy.model, memoryFileSource(filesByName(adapter.files), 'adapter'))
      ).mergeAndUnload();
    }
    try {
      emit({ type: 'progress', label: 'writing', done: 2, total: 3 });
      return await write(model, copy);
    } finally {
      model.dispose();
    }
  } finally {
    loaded.pretrained = await openBase(loaded);
    if (adapter.files.length > 0) {
      session.peft = await loadAdapter(
        loaded.pretrained.model,
        memoryFileSource(filesByName(adapter.files), 'adapter'),
      );
    }
    emit({ type: 'progress', label: 'done', done: 3, total: 3 });
  }
}

async function exportBundle(options: ExportBundleOptions, emit: Emit) {
  const loaded = requireModel();
  if (options.format === 'adapter') {
    if (!session.peft)
      throw new Error('there is no adapter: train LoRA, pick a checkpoint or upload an adapter');
    const sink = memorySink();
    await saveAdapter(session.peft, sink, { baseModelNameOrPath: loaded.baseName });
    return { files: sink.files, commands: [] };
  }
  if (options.format === 'merged') {
    if (!(options.maxShardBytes > 0)) throw new Error('the shard size must be a positive number of bytes');
    return withExportModel(true, emit, async (model, pretrained) => {
      const sink = memorySink();
      await saveModel(model, sink, {
        dtype: options.dtype,
        maxShardBytes: options.maxShardBytes,
        extraFiles: pretrained.tokenizerFiles,
        generationConfig: pretrained.generationConfig,
      });
      return { files: sink.files, commands: [] };
    });
  }
  const separate = options.ggufAdapter && session.peft !== null;
  const adapterSink = memorySink();
  if (separate && session.peft)
    await saveAdapter(session.peft, adapterSink, { baseModelNameOrPath: loaded.baseName });
  const adapterFiles = filesByName(adapterSink.files);
  const name = options.name.trim().replace(/[^\w.-]+/g, '-') || 'model';
  return withExportModel(!separate, emit, async (model, pretrained) => {
    const bundle = ggufBundle({
      model,
      tokenizer: tokenizerOf({ ...loaded, pretrained }),
      tokenizerFiles: pretrained.tokenizerFiles,
      fileType: options.ggufType,
      name,
      adapter: separate
        ? {
            config: adapterFiles.get('adapter_config.json')!,
            weights: adapterFiles.get('adapter_model.safetensors')!,
          }
        : undefined,
      system: options.system || undefined,
    });
    const files: ExportedFile[] = [];
    for (const file of bundle.files) files.push({ name: file.name, bytes: await collect(file.chunks()) });
    return { files, commands: bundle.commands('.') };
  });
}

/** The handlers of this block, merged into the worker's table. */
export function webappHandlers(): { [K in WebappRequest['kind']]: WebappHandler<K> } {
  return {
    async 'load-model-hub'(request, emit) {
      const { files, fromCache, offline } = await downloadHubModel(request.hub, (name, done, total) =>
        emit({ type: 'progress', label: `downloading ${name}`, done, total }),
      );
      emit({
        type: 'log',
        line: offline
          ? 'read from the browser cache; the hub did not answer'
          : fromCache
            ? 'read from the browser cache'
            : 'downloaded and cached',
      });
      return loadFiles(files, request.hub.repo.trim(), emit, request.baseFormat);
    },

    async 'cached-hub-models'() {
      return { models: await cachedHubModels() };
    },

    async 'memory-plan'(request) {
      const loaded = requireModel();
      const gpu = await device();
      const info = gpu.info;
      let plan: ReturnType<typeof planRun>;
      try {
        plan = planInBrowser(request.config, { location: loaded.location, datasets: [], runName: 'plan' });
      } catch (error) {
        return {
          plan: null,
          baseFormat: heldFormat(loaded),
          adapterClass: info.adapterClass,
          problems: [(error as Error).message],
        };
      }
      return {
        plan: planMemory(planInputOf(loaded, plan, gpu)),
        baseFormat: baseFormatOfRun(loaded, plan),
        adapterClass: info.adapterClass,
        problems: [],
      };
    },

    async chat(request, emit) {
      const loaded = requireModel();
      const tokenizer = tokenizerOf(loaded);
      const prompts = promptEncoder(loaded, session.data?.template);
      const conversation: Conversation = {
        system: request.settings.system.trim() || undefined,
        turns: request.turns.map((turn) => ({ role: turn.role, content: turn.content })),
      };
      const ids = prompts.encodePrompt(conversation);
      const controller = new AbortController();
      state.generation = controller;
      const started = performance.now();
      const { settings } = request;
      const hide = !settings.showSpecialTokens;
      try {
        const [result] = await withVariant(request.variant, (model) =>
          generate(model, tokenizer, ids, {
            maxNewTokens: settings.maxNewTokens,
            temperature: settings.temperature,
            topP: settings.topP,
            seed: settings.seed,
            signal: controller.signal,
            stopTokens: [...new Set([...model.config.eosTokenIds, ...prompts.stopTokenIds()])],
            onToken: (event) => {
              if (event.text && !(hide && tokenizer.isSpecialId(event.token))) {
                emit({ type: 'token', text: event.text });
              }
            },
          }),
        );
        let text = hide ? tokenizer.decode(result.tokens, { skipSpecialTokens: true }) : result.text;
        if (!hide && typeof result.stoppedBy === 'number')
          text += tokenizer.idToToken(result.stoppedBy) ?? '';
        return {
          text,
          tokens: result.tokens.length,
          milliseconds: performance.now() - started,
          stopped: result.finishReason === 'aborted',
        };
      } finally {
        if (state.generation === controller) state.generation = null;
      }
    },

    async 'stop-generation'() {
      const running = state.generation;
      running?.abort();
      return { stopping: running !== null };
    },

    async 'list-adapters'() {
      const runs = [];
      for (const runName of await listRuns()) {
        const checkpoints = await listCheckpointsOf(runName);
        if (checkpoints.length > 0) runs.push({ runName, checkpoints });
      }
      return { runs, current: session.peft ? state.adapterLabel : 'none' };
    },

    async 'use-adapter'(request, emit) {
      const loaded = requireModel();
      const source: AdapterSource = request.source;
      if (source.kind === 'none') {
        await resetModel(loaded, emit);
        return { current: 'none' };
      }
      if (source.kind === 'upload') {
        const files = new Map(
          Object.entries(source.files).map(([path, blob]) => [path.split('/').pop() ?? path, blob]),
        );
        await applyAdapter(files, source.name, emit);
        state.adapterLabel = `uploaded ${source.name}`;
        return { current: state.adapterLabel };
      }
      const storage = await opfsStorage(source.runName);
      const names = await storage.list(source.checkpoint);
      if (!names.includes('adapter_model.safetensors')) {
        throw new Error(
          `${source.runName}/${source.checkpoint} holds no adapter (${names.join(', ') || 'no files'}): only LoRA, DoRA and adapter runs can be picked here`,
        );
      }
      const files = new Map<string, Uint8Array>();
      for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
        files.set(name, await storage.readFile(`${source.checkpoint}/${name}`));
      }
      await applyAdapter(files, `${source.runName}/${source.checkpoint}`, emit);
      state.adapterLabel = `${source.runName}/${source.checkpoint}`;
      return { current: state.adapterLabel };
    },

    async 'checkpoint-files'(request) {
      const storage = await opfsStorage(request.runName);
      const files: ExportedFile[] = [];
      const walk = async (path: string) => {
        for (const name of await storage.list(path)) {
          const child = `${path}/${name}`;
          const inner = await storage.list(child);
          if (inner.length > 0) await walk(child);
          else files.push({ name: child, bytes: await storage.readFile(child) });
        }
      };
      await walk(request.checkpoint);
      if (files.length === 0) throw new Error(`${request.runName} has no ${request.checkpoint}`);
      return { files };
    },

    async predict(request, emit) {
      const loaded = requireModel();
      const tokenizer = tokenizerOf(loaded);
      const loadedExamples = await loadExamples({
        datasets: Object.entries(request.files).map(([name, file]) => ({
          name,
          fileName: name,
          source: file,
        })),
        stage: 'sft',
        maxSamples: request.maxSamples > 0 ? request.maxSamples : undefined,
      });
      const examples = predictExamplesFrom(
        [...loadedExamples.train, ...loadedExamples.validation].filter(
          (example) => example.kind === 'supervised',
        ),
      );
      if (examples.length === 0) throw new Error('no row of the dataset is a usable test example');
      const prompts = promptEncoder(loaded, session.data?.template);
      const result = await withVariant(request.variant, (model) =>
        predict(model, tokenizer, examples, {
          prompts,
          stopStrings: prompts.stopStrings(),
          maxNewTokens: request.maxNewTokens,
          batchSize: 4,
          onProgress: (progress) =>
            emit({
              type: 'progress',
              label: `predicting (${request.variant})`,
              done: progress.done,
              total: progress.total,
            }),
        }),
      );
      return {
        variant: request.variant,
        metrics: result.metrics,
        records: result.records,
        seconds: result.timing.seconds,
      };
    },

    async forgetting(request, emit) {
      const loaded = requireModel();
      const tokenizer = tokenizerOf(loaded);
      if (!session.peft && !session.baseChanged) {
        throw new Error('there is no tuned model to compare: train, pick a checkpoint or upload an adapter');
      }
      const entries = Object.entries(request.general);
      const top = entries[0]?.[0].split('/')[0] ?? 'task';
      const underTop = entries.every(([name]) => name.startsWith(`${top}/`));
      const files = Object.fromEntries(
        entries.map(([name, file]) => [underTop ? name.slice(top.length + 1) : name, file]),
      );
      const task = await loadMcqTask(memoryFileResolver(files), underTop ? top : 'task');
      const score = (variant: 'base' | 'tuned') =>
        withVariant(variant, (model) =>
          evaluateMcq(model, tokenizer, task, {
            nShot: request.nShot,
            limit: request.maxQuestions > 0 ? request.maxQuestions : undefined,
            onProgress: (progress) =>
              emit({
                type: 'progress',
                label: `general questions (${variant})`,
                done: progress.done,
                total: progress.total,
              }),
          }),
        );
      const comparisons = [compareMcqResults('general', await score('base'), await score('tuned'))];
      const texts = request.domainTexts.map((text) => text.trim()).filter(Boolean);
      if (texts.length === 0)
        throw new Error('add at least one domain text (held-out text of your training domain)');
      const corpus = (variant: 'base' | 'tuned') =>
        withVariant(variant, async (model) => {
          let loss = 0;
          let tokens = 0;
          for (const text of texts) {
            const result = await perplexity(model, tokenizer, text);
            loss += result.meanLoss * result.tokens;
            tokens += result.tokens;
          }
          return Math.exp(loss / Math.max(1, tokens));
        });
      comparisons.push(
        comparePerplexity(
          'domain',
          'your domain texts',
          await corpus('base'),
          await corpus('tuned'),
          texts.length,
        ),
      );
      const report = forgettingReport(comparisons);
      return { report, text: formatForgettingReport(report) };
    },

    async 'export-bundle'(request, emit) {
      return exportBundle(request.options, emit);
    },
  };
}

/** planMemory's input for the loaded model and a planned run, against this adapter and a tab's budget. */
/**
 * The frozen base a run uses in the browser: the format the model was loaded in (the Model tab's
 * choice), unless the run's config names one itself (quantization_bit, bf16, fp16, pure_bf16 or an
 * infer_dtype other than auto); the planner's auto default does not override the loaded choice.
 */
function baseFormatOfRun(loaded: LoadedModel, plan: ReturnType<typeof planRun>): BaseStorage {
  const config = plan.config;
  const named =
    config.quantization_bit != null ||
    config.bf16 === true ||
    config.fp16 === true ||
    config.pure_bf16 === true ||
    (config.infer_dtype !== undefined && config.infer_dtype !== 'auto');
  return named ? plan.baseFormat : heldFormat(loaded);
}

/** The memory plan's input for a run on this tab's device (@webtune/train's reading, as the CLI's). */
function planInputOf(loaded: LoadedModel, plan: ReturnType<typeof planRun>, gpu: Device) {
  const { limits } = gpu.info;
  return memoryPlanInputOf(
    plan,
    loaded.pretrained.model.config,
    {
      maxBufferSize: limits.maxBufferSize ?? 0,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize ?? 0,
      budgetBytes: BROWSER_TAB_BUDGET,
      matmulOuterSegments: gpu.tuning.matmulOuterSegments,
      hasF16: gpu.hasF16,
    },
    baseFormatOfRun(loaded, plan),
  );
}

/**
 * Refuses a run whose memory plan does not fit this adapter or a browser tab, before anything is
 * loaded or trained, with the plan's advice (quantize, checkpointing, a smaller batch, a shorter
 * cutoff_len).
 */
export async function refuseRunThatCannotFit(
  loaded: LoadedModel,
  plan: ReturnType<typeof planRun>,
): Promise<void> {
  const memory = planMemory(planInputOf(loaded, plan, await device()));
  if (memory.fits) return;
  throw new Error(
    `this run does not fit in this tab: ${memory.problems.join('; ')}. Try: ${memory.advice.join('; ')}`,
  );
}
