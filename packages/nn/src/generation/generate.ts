import type { Tensor } from '@webtune/tensors';
import { ModelError } from '../errors.js';
import * as F from '../functional.js';
import type { CausalLM } from '../models/llama.js';
import type { TextTokenizer } from '../tokenizer.js';
import { FusedDecoder, fusedDecodeUnsupported } from './fused-decoder.js';
import { KVCache } from './kv-cache.js';
import {
  isGreedy,
  type SamplingOptions,
  SeededRandom,
  sampleToken,
  validateSamplingOptions,
} from './sampling.js';

/** One step of one sequence, as passed to `onToken`. */
export interface TokenEvent {
  /** Which prompt (index into the prompts given). */
  prompt: number;
  /** The new token (on the last event of a sequence stopped by a stop token: that token). */
  token: number;
  /** 0 for the first new token. */
  index: number;
  /**
   * Text that became certain with this token: '' while a multi-byte character or a possible
   * stop string is incomplete. The concatenation over a sequence's events is its result text.
   */
  text: string;
  /** Set on the sequence's last event. */
  finishReason?: FinishReason;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to add per prompt (default 128). */
  maxNewTokens?: number;
  /**
   * Token ids that end a sequence (not included in the output). Default: the config's
   * eos_token_id(s). Pass [] to run to maxNewTokens.
   */
  stopTokens?: readonly number[];
  /** Texts that end a sequence; the output is cut before the first one. Needs a tokenizer. */
  stopStrings?: readonly string[];
  /** Called for each new token of each prompt, in order. */
  onToken?: (event: TokenEvent) => void;
  /** Add the tokenizer's default special tokens (BOS) to text prompts. Default true. */
  addSpecialTokens?: boolean;
  /** Stops every sequence at the next step. */
  signal?: AbortSignal;
  /**
   * Decode with the fused kernels (generation/fused-decoder.ts) where the model allows it
   * (default true); false runs every step through the model's own forward.
   */
  fusedDecode?: boolean;
  /**
   * Prompt tokens (all rows together) up to which the prompt itself runs through the fused decode
   * kernels (default 32). Those kernels read every weight once per block of 8 rows; a longer
   * prompt runs through the fused prefill (`tiledPrefill`) or the model's forward. 0 always uses
   * the forward.
   */
  fusedPrefillTokens?: number;
  /**
   * Prompts over `fusedPrefillTokens` run through the fused kernels with register-tiled products
   * (kernels/decode/prefill-product.ts: each weight read once per tile of rows), keys and values
   * rotated straight into the cache, one submit. Default: where the device's tuning prefers
   * register-tiled matmuls (CPU rasterisers); elsewhere, and with false, through the model's forward.
   * Shorter prompts that decode's products cannot run (Gemma, sliding windows) take it too, unless false.
   */
  tiledPrefill?: boolean;
  /**
   * Steps recorded into one command buffer before the host reads the chosen ids back (fused path
   * only; default 8; sampling with several prompts takes one). Steps past a stop token are
   * computed and dropped.
   */
  stepsPerSubmit?: number;
  /** Per-prompt settings, one per prompt (see PromptSettings). */
  rows?: readonly PromptSettings[];
}

/**
 * One prompt's own settings in a batch (serve's queue decodes concurrent requests together):
 * its token limit, extra stop texts, seed and abort signal. A row's tokens do not depend on the
 * other rows: each row draws from its own generator, seeded with its seed (else the options').
 */
export interface PromptSettings {
  /** This row's most new tokens (at least 1; default the options' maxNewTokens). */
  maxNewTokens?: number;
  /** Texts that end this row, besides the options' stopStrings. */
  stopStrings?: readonly string[];
  seed?: number;
  /** Ends this row at the next step. */
  signal?: AbortSignal;
}

export type FinishReason = 'stop-token' | 'stop-string' | 'length' | 'aborted';

export interface GenerationResult {
  promptTokens: number[];
  /** The new tokens (without the stop token; with the tokens of a stop string). */
  tokens: number[];
  /** The new text, cut before a stop string ('' without a tokenizer). */
  text: string;
  finishReason: FinishReason;
  /** The stop token or stop string that ended the sequence. */
  stoppedBy?: number | string;
}

export interface GenerationTimings {
  promptTokens: number;
  prefillMs: number;
  newTokens: number;
  decodeMs: number;
  decodeSteps: number;
  /** Whether decoding took the fused path. */
  fused: boolean;
  /**
   * Why decoding did not take the fused path (`fusedDecodeUnsupported`'s reason, 'fusedDecode:
   * false', 'LongRoPE'), or null when it did.
   */
  unfusedReason: string | null;
  /**
   * How the prompt ran: the fused kernels with register-tiled products ('tiled') or decode's
   * products ('matvec'), or the model's forward ('forward').
   */
  prefillPath: 'tiled' | 'matvec' | 'forward';
  /** Device work during decoding (after prefill): compute dispatches, submits and read-backs. */
  decodeDispatches: number;
  decodeSubmits: number;
  decodeReadbacks: number;
}

/**
 * Continues one prompt or several at once (left-padded into one batch, with a padding mask and
 * per-row positions) with a KV cache on the device. Prompts are texts (needs a tokenizer) or
 * token ids. On the fused path (generation/fused-decoder.ts) every step chooses its token on the
 * device (argmax, or the sampler's rules with draws from the seeded host generator) and the host
 * reads back ids only, several steps at a time; otherwise greedy decoding takes the argmax on the
 * device and sampling reads back one row of logits per prompt and step.
 */
export async function generate(
  model: CausalLM,
  tokenizer: TextTokenizer | null,
  prompts: string | readonly string[] | readonly number[] | readonly (readonly number[])[],
  options: GenerateOptions = {},
): Promise<GenerationResult[]> {
  return (await generateWithTimings(model, tokenizer, prompts, options)).results;
}

/** `generate` that also reports prefill and decode times (what the benchmark prints). */
export async function generateWithTimings(
  model: CausalLM,
  tokenizer: TextTokenizer | null,
  prompts: string | readonly string[] | readonly number[] | readonly (readonly number[])[],
  options: GenerateOptions = {},
): Promise<{ results: GenerationResult[]; timings: GenerationTimings }> {
  validateSamplingOptions(options);
  const promptIds = normalisePrompts(prompts, tokenizer, options.addSpecialTokens ?? true);
  const rows = options.rows;
  if (rows && rows.length !== promptIds.length) {
    throw new ModelError(`generate: ${rows.length} row settings for ${promptIds.length} prompts`);
  }
  const rowLimits = promptIds.map((_, b) => rows?.[b]?.maxNewTokens ?? options.maxNewTokens ?? 128);
  for (const [b, limit] of rowLimits.entries()) {
    if (!Number.isInteger(limit) || limit < (rows?.[b]?.maxNewTokens !== undefined ? 1 : 0)) {
      throw new ModelError(`maxNewTokens must be a non-negative integer (at least 1 per row), got ${limit}`);
    }
  }
  const maxNewTokens = Math.max(...rowLimits);
  const shared = (options.stopStrings ?? []).filter((s) => s.length > 0);
  const rowStops = promptIds.map((_, b) => [
    ...shared,
    ...(rows?.[b]?.stopStrings ?? []).filter((s) => s.length > 0),
  ]);
  if (rowStops.some((stops) => stops.length > 0) && !tokenizer)
    throw new ModelError('stopStrings need a tokenizer');
  const config = model.config;
  for (const [i, ids] of promptIds.entries()) {
    if (ids.length === 0) throw new ModelError(`prompt ${i} has no tokens (give BOS or some text)`);
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= config.vocabSize);
    if (bad !== undefined)
      throw new ModelError(
        `prompt ${i} holds token id ${bad}, outside the vocabulary of ${config.vocabSize}`,
      );
  }
  const stopTokens = new Set(options.stopTokens ?? config.eosTokenIds);
  const batch = promptIds.length;
  const longest = Math.max(...promptIds.map((ids) => ids.length));
  const capacity = longest + maxNewTokens;
  const padding = promptIds.map((ids) => longest - ids.length);
  const padId = config.padTokenId ?? 0;
  const device = model.device;
  const random = new SeededRandom(options.seed);
  // With per-row settings every row draws from its own generator (its tokens then do not depend on the batch).
  const randoms = promptIds.map((_, b) => (rows ? new SeededRandom(rows[b]?.seed ?? options.seed) : random));
  const abortedRow = (b: number) =>
    (options.signal?.aborted ?? false) || (rows?.[b]?.signal?.aborted ?? false);
  const greedyOnDevice = isGreedy(options) && (options.repetitionPenalty ?? 1) === 1;

  const sequences = promptIds.map((ids) => [...ids]);
  const generated: number[][] = promptIds.map(() => []);
  const states = promptIds.map(() => ({
    finished: false,
    reason: 'length' as FinishReason,
    stoppedBy: undefined as number | string | undefined,
    emitted: '',
    text: '',
  }));
  const timings: GenerationTimings = {
    promptTokens: promptIds.reduce((total, ids) => total + ids.length, 0),
    prefillMs: 0,
    newTokens: 0,
    decodeMs: 0,
    decodeSteps: 0,
    fused: false,
    unfusedReason: null,
    prefillPath: 'forward',
    decodeDispatches: 0,
    decodeSubmits: 0,
    decodeReadbacks: 0,
  };

  if (maxNewTokens === 0) return { results: finish(), timings };

  // Prefill's time starts here: building the KV cache is part of it (as Transformers' prefill
  // builds its cache inside the forward).
  let started = performance.now();
  const cache = KVCache.forModel(device, config, batch, capacity, weightDtype(model));
  let paddingMask: Tensor | null = null;
  let fused: FusedDecoder | null = null;
  const stepsPerSubmit = options.stepsPerSubmit ?? 8;
  if (!Number.isInteger(stepsPerSubmit) || stepsPerSubmit < 1) {
    throw new ModelError(`stepsPerSubmit must be a positive integer, got ${stepsPerSubmit}`);
  }
  try {
    if (padding.some((p) => p > 0)) {
      const mask = new Int32Array(batch * capacity);
      for (let b = 0; b < batch; b++) for (let j = padding[b]; j < capacity; j++) mask[b * capacity + j] = 1;
      paddingMask = device.fromArray(mask, [batch, capacity], 'i32').keep();
    }
    const positionsFor = (start: number, steps: number) =>
      padding.map((pad) => Array.from({ length: steps }, (_, i) => Math.max(0, start + i - pad)));

    // Prefill: every prompt token at once, logits only at the last position.
    const firstIds = new Int32Array(batch * longest);
    for (let b = 0; b < batch; b++) {
      firstIds.fill(padId, b * longest, b * longest + padding[b]);
      firstIds.set(promptIds[b], b * longest + padding[b]);
    }
    // Every id fed so far, row by row: kept only for LongRoPE, which may need to run them again.
    const fed =
      config.ropeScaling?.type === 'longrope'
        ? Array.from({ length: batch }, (_, b) => [...firstIds.subarray(b * longest, (b + 1) * longest)])
        : null;
    timings.unfusedReason =
      options.fusedDecode === false
        ? 'fusedDecode: false'
        : (fusedDecodeUnsupported(model) ?? (fed ? 'LongRoPE' : null));
    if (timings.unfusedReason === null) {
      // The fused kernels run the prompt too (keys and values straight into the cache).
      // (fusedDecodeUnsupported was just run: the constructor need not walk the model again.)
      const steps = Math.min(stepsPerSubmit, Math.max(1, maxNewTokens));
      fused = new FusedDecoder(model, cache, padding, steps, true, true);
      timings.fused = true;
    }
    const fusedPrefillTokens = options.fusedPrefillTokens ?? 32;
    if (!Number.isInteger(fusedPrefillTokens) || fusedPrefillTokens < 0) {
      throw new ModelError(`fusedPrefillTokens must be a non-negative integer, got ${fusedPrefillTokens}`);
    }
    const tiledPrefill = options.tiledPrefill ?? device.tuning.matmulKernel === 'register';
    const short = batch * longest <= fusedPrefillTokens;
    let next: number[];
    // Long prompts take the tiled prefill where it applies; short ones decode's products.
    // A short prompt decode's products cannot run (Gemma, sliding windows) takes the tiled prefill
    // (unless `tiledPrefill: false` says otherwise).
    let prefillForm: 'tiled' | 'matvec' | null =
      !fused || fusedPrefillTokens === 0 ? null : short ? 'matvec' : tiledPrefill ? 'tiled' : null;
    if (prefillForm === 'matvec' && fused?.prefillUnsupported && options.tiledPrefill !== false)
      prefillForm = 'tiled';
    const prefillBlocked =
      prefillForm === 'tiled' ? fused?.tiledPrefillUnsupported : fused?.prefillUnsupported;
    if (fused && prefillForm && prefillBlocked === null) {
      timings.prefillPath = prefillForm;
      const first = await fused.prefill(firstIds, longest, 0, greedyOnDevice, prefillForm === 'tiled');
      cache.advance(longest);
      if (first instanceof Float32Array) next = sampleRows(first);
      else {
        const bad = first.findIndex((id) => !(id >= 0 && id < config.vocabSize));
        if (bad >= 0) throw nonFiniteLogits(bad);
        next = first;
      }
    } else next = await step(firstIds, longest, positionsFor(0, longest));
    timings.prefillMs = performance.now() - started;
    // Decode steps follow: pack the small layers now, so their one-time copies are not counted as
    // the first step's dispatches (a prompt-only call never packs them).
    if (maxNewTokens > 1) fused?.prepareDecode();
    const before = { ...device.stats };
    started = performance.now();
    for (let index = 0; ; index++) {
      for (let b = 0; b < batch; b++) {
        if (!states[b].finished) accept(b, next[b], index, abortedRow(b));
      }
      if (states.every((s) => s.finished)) break;
      const ids = new Int32Array(batch);
      for (let b = 0; b < batch; b++) ids[b] = states[b].finished ? padId : next[b];
      if (fused) {
        // Several steps per submit, each choosing its token on the device; the host reads their
        // ids back once. Sampled batches of several rows take one step per submit, so the draws
        // go to the rows still running, as the host sampler's do.
        const sampled = !greedyOnDevice;
        // (With per-row generators a row's draws never go to another row: chunks stay whole.)
        const steps = Math.min(sampled && batch > 1 && !rows ? 1 : fused.maxSteps, maxNewTokens - 1 - index);
        fused.setIds(ids);
        let sampling: { options: GenerateOptions; draws: Float32Array } | undefined;
        if (sampled) {
          if (index === 0) fused.startSampling(sequences);
          const draws = new Float32Array(steps * batch);
          if (!isGreedy(options)) {
            for (let s = 0; s < steps; s++) {
              for (let b = 0; b < batch; b++)
                if (!states[b].finished) draws[s * batch + b] = randoms[b].next();
            }
          }
          sampling = { options, draws };
        }
        const chosen = await fused.decodeSteps(cache.length, steps, sampling);
        cache.advance(steps);
        timings.decodeSteps += steps;
        for (let s = 0; s < steps - 1 && !states.every((state) => state.finished); s++) {
          index++;
          for (let b = 0; b < batch; b++) {
            if (states[b].finished) continue;
            if (chosen[s][b] < 0) throw nonFiniteLogits(b);
            accept(b, chosen[s][b], index, abortedRow(b));
          }
        }
        next = chosen[steps - 1];
        for (let b = 0; b < batch; b++) if (!states[b].finished && next[b] < 0) throw nonFiniteLogits(b);
        continue;
      }
      if (fed) for (let b = 0; b < batch; b++) fed[b].push(ids[b]);
      if (fed && longRopeSwitches(config, cache.length)) {
        // The cached keys were rotated with LongRoPE's short factors and the sequence now
        // outgrows them: run every position again with the long ones, as Transformers' Phi-3
        // generation does (it drops its cache at this step).
        const length = cache.length + 1;
        cache.reset();
        next = await step(Int32Array.from(fed.flat()), length, positionsFor(0, length));
      } else next = await step(ids, 1, positionsFor(longest + index, 1));
      timings.decodeSteps++;
    }
    timings.decodeMs = performance.now() - started;
    timings.newTokens = generated.reduce((total, tokens) => total + tokens.length, 0);
    timings.decodeDispatches = device.stats.dispatches - before.dispatches;
    timings.decodeSubmits = device.stats.submits - before.submits;
    timings.decodeReadbacks = device.stats.readbacks - before.readbacks;
  } finally {
    fused?.dispose();
    cache.dispose();
    paddingMask?.dispose();
  }
  return { results: finish(), timings };

  /** Runs the model on `ids` [batch, steps] and returns the next token of every row. */
  async function step(ids: Int32Array, steps: number, positions: number[][]): Promise<number[]> {
    return device.scope(async () => {
      const input = device.fromArray(ids, [batch, steps], 'i32');
      const logits = model.forward(input, {
        cache,
        positions,
        paddingMask: paddingMask ?? undefined,
        logits: 'last',
      });
      if (greedyOnDevice) {
        const ids = [...(await F.argmax(logits.reshape([batch, config.vocabSize]), -1).toArray())];
        // The device's argmax finds no largest value among NaNs (it returns an id off the vocabulary).
        const bad = ids.findIndex((id) => !(id >= 0 && id < config.vocabSize));
        if (bad >= 0) throw nonFiniteLogits(bad);
        return ids;
      }
      return sampleRows((await logits.toArray()) as Float32Array);
    });
  }

  /** The host sampler's choice for every row of logits [batch, vocab] (padId for finished rows). */
  function sampleRows(values: Float32Array): number[] {
    const chosen: number[] = [];
    for (let b = 0; b < batch; b++) {
      if (states[b].finished) {
        chosen.push(padId);
        continue;
      }
      const row = values.slice(b * config.vocabSize, (b + 1) * config.vocabSize);
      if (row.some((value) => Number.isNaN(value))) throw nonFiniteLogits(b);
      chosen.push(sampleToken(row, options, randoms[b], sequences[b]));
    }
    return chosen;
  }

  function nonFiniteLogits(row: number): ModelError {
    return new ModelError(
      `generate: the model's next-token logits are NaN (row ${row}, after ${generated[row].length} new tokens): the weights or an activation hold NaN or overflowed, so no token can be chosen`,
    );
  }

  /** Takes row b's next token: stop checks, text, the event. */
  function accept(b: number, token: number, index: number, aborted: boolean): void {
    const state = states[b];
    if (stopTokens.has(token)) {
      Object.assign(state, { finished: true, reason: 'stop-token', stoppedBy: token });
    } else {
      sequences[b].push(token);
      generated[b].push(token);
      if (index + 1 >= rowLimits[b]) Object.assign(state, { finished: true, reason: 'length' });
      else if (aborted) Object.assign(state, { finished: true, reason: 'aborted' });
    }
    const text = streamText(b);
    options.onToken?.({
      prompt: b,
      token,
      index,
      text,
      ...(state.finished ? { finishReason: state.reason } : {}),
    });
  }

  /**
   * Decodes row b's new tokens, cuts at the first stop string, and returns the text that is now
   * certain: all of it once the row has finished, else without a trailing incomplete UTF-8
   * character or a tail that could be the start of a stop string.
   */
  function streamText(b: number): string {
    const state = states[b];
    if (!tokenizer) return '';
    let text = tokenizer.decode(generated[b]);
    let cut = -1;
    for (const stop of rowStops[b]) {
      const at = text.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        state.stoppedBy = stop;
      }
    }
    if (cut >= 0) {
      text = text.slice(0, cut);
      state.finished = true;
      state.reason = 'stop-string';
    }
    state.text = text;
    let safe = text.length;
    if (!state.finished) {
      while (safe > 0 && text[safe - 1] === '\uFFFD') safe--;
      let hold = 0;
      for (const stop of rowStops[b]) {
        for (let keep = Math.min(stop.length - 1, safe); keep > hold; keep--) {
          if (text.endsWith(stop.slice(0, keep), safe)) {
            hold = keep;
            break;
          }
        }
      }
      safe -= hold;
    }
    // Decoding more tokens only appends text, except right after a held-back character.
    if (!text.startsWith(state.emitted) || safe <= state.emitted.length) return '';
    const delta = text.slice(state.emitted.length, safe);
    state.emitted += delta;
    return delta;
  }

  function finish(): GenerationResult[] {
    return promptIds.map((ids, b) => {
      const state = states[b];
      return {
        promptTokens: [...ids],
        tokens: generated[b],
        text: state.text,
        finishReason: state.reason,
        ...(state.stoppedBy !== undefined ? { stoppedBy: state.stoppedBy } : {}),
      };
    });
  }
}

function weightDtype(model: CausalLM): 'f32' | 'f16' {
  const table = model.getParameterByName('model.embed_tokens.weight');
  return table?.dtype === 'f16' ? 'f16' : 'f32';
}

function normalisePrompts(
  prompts: string | readonly string[] | readonly number[] | readonly (readonly number[])[],
  tokenizer: TextTokenizer | null,
  addSpecialTokens: boolean,
): number[][] {
  const encode = (text: string) => {
    if (!tokenizer) throw new ModelError('text prompts need a tokenizer; pass token ids instead');
    return [...tokenizer.encode(text, { addSpecialTokens })];
  };
  if (typeof prompts === 'string') return [encode(prompts)];
  if (prompts.length === 0) throw new ModelError('generate: no prompts given');
  if (typeof prompts[0] === 'number') return [[...(prompts as readonly number[])]];
  return (prompts as readonly (string | readonly number[])[]).map((prompt) =>
    typeof prompt === 'string' ? encode(prompt) : [...prompt],
  );
}

/**
 * Whether a one-token step after `cached` positions is the first past LongRoPE's short context
 * (the cache then holds keys rotated with the short factors).
 */
function longRopeSwitches(config: CausalLM['config'], cached: number): boolean {
  const scaling = config.ropeScaling;
  return scaling?.type === 'longrope' && cached === scaling.originalMaxPositionEmbeddings;
}
