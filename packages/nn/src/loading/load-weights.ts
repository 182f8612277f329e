import { type SafetensorsEntry, toFloat32 } from '@webtune/safetensors';
import type { Device } from '@webtune/tensors';
import { ModelError } from '../errors.js';
import type { CausalLM } from '../models/llama.js';
import {
  type BaseFormat,
  type PackSummary,
  packedTarget,
  packFrozen,
  record,
  tableFormat,
  targetFormat,
} from './frozen-weights.js';

/** Progress of a load: one call per tensor placed on the device. */
export interface LoadProgress {
  name: string;
  /** Tensors placed so far, and the number expected (the model's parameter slots). */
  loaded: number;
  total: number;
  /** Bytes read from the checkpoint so far. */
  bytes: number;
}

export interface LoadWeightsOptions {
  /** Parameter dtype on the device (default f32; f16 needs shader-f16). */
  dtype?: 'f32' | 'f16';
  /**
   * Storage of the frozen decoder projections (default f32): `f16`/`bf16` or ggml `q8_0`/`q4_0`
   * blocks, packed on the way in, one tensor at a time (see frozen-weights.ts).
   */
  baseFormat?: BaseFormat;
  /** Filled with what was packed when baseFormat is not f32. */
  packSummary?: PackSummary;
  /** Throw on tensors the model has no slot for (default true). */
  strict?: boolean;
  onProgress?: (progress: LoadProgress) => void;
}

/** Checkpoint tensors that carry no weights (buffers older exports saved). */
const IGNORED = [/\.rotary_emb\.inv_freq$/, /\.attn\.masked_bias$/, /\.attn\.bias$/];

/**
 * Streams checkpoint tensors onto the device, one at a time: each entry's bytes are converted to
 * float32 on the host (F32, F16, BF16, F64 on disk), checked against the parameter's shape,
 * uploaded, and dropped before the next is read. A tied head's `lm_head.weight` in the file is
 * skipped. Ends by tying the head and checking that every parameter was filled.
 */
export async function loadWeights(
  model: CausalLM,
  entries: AsyncIterable<SafetensorsEntry>,
  options: LoadWeightsOptions = {},
): Promise<CausalLM> {
  const device: Device = model.device;
  const dtype = options.dtype ?? 'f32';
  const slots = new Map(model.namedSlots());
  const total = [...slots.keys()].filter(
    (name) => !(model.config.tieWordEmbeddings && name === 'lm_head.weight'),
  ).length;
  const unknown: string[] = [];
  let loaded = 0;
  let bytes = 0;
  for await (const entry of entries) {
    const name = textModelName(entry.name, model.config.textPartOf);
    if (name === null) continue;
    const slot = slots.get(name);
    if (!slot) {
      if (!IGNORED.some((pattern) => pattern.test(name))) unknown.push(name);
      continue;
    }
    if (model.config.tieWordEmbeddings && name === 'lm_head.weight') continue;
    if (!sameShape(slot.shape, entry.shape)) {
      throw new ModelError(
        `checkpoint tensor ${name} has shape [${entry.shape.join(', ')}], the model expects [${slot.shape.join(', ')}] (check config.json)`,
      );
    }
    if (slot.tensor) throw new ModelError(`checkpoint tensor ${name} appears twice`);
    if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) {
      throw new ModelError(
        `checkpoint tensor ${name} is ${entry.dtype}; only F32, F16, BF16 and F64 weights load`,
      );
    }
    const values = toFloat32(entry);
    const baseFormat = options.baseFormat ?? 'f32';
    const target = baseFormat === 'f32' ? null : packedTarget(model, name);
    const chosen = target && baseFormat !== 'f32' ? targetFormat(target, baseFormat) : null;
    if (target && chosen !== null && baseFormat !== 'f32') {
      const weight = packFrozen(device, values, [target.rows, target.cols], chosen);
      target.owner.setPackedParameter('weight', weight);
      const asked = target.table ? tableFormat(baseFormat) : baseFormat;
      if (options.packSummary)
        record(options.packSummary, asked, chosen, weight.byteLength, values.length * 4);
    } else {
      model.setParameterByName(name, device.fromArray(values, entry.shape, dtype).keep());
    }
    loaded++;
    bytes += entry.data.byteLength;
    options.onProgress?.({ name, loaded, total, bytes });
  }
  if (unknown.length > 0 && (options.strict ?? true)) {
    throw new ModelError(
      `the checkpoint has ${unknown.length} tensors this ${model.config.architecture} model has no place for: ${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''}`,
    );
  }
  model.tieWeights();
  model.assertLoaded();
  return model;
}

/**
 * The text model's name for a tensor of a multimodal checkpoint (Gemma3ForConditionalGeneration):
 * `language_model.model.*` (Hub layout) or `model.language_model.*` (transformers 5) become
 * `model.*`, `language_model.lm_head.*` becomes `lm_head.*`; the vision tower and projector give null.
 */
function textModelName(name: string, textPartOf: string | null): string | null {
  if (!textPartOf) return name;
  const renames: [string, string][] = [
    ['language_model.model.', 'model.'],
    ['model.language_model.', 'model.'],
    ['language_model.lm_head.', 'lm_head.'],
    ['lm_head.', 'lm_head.'],
  ];
  for (const [from, to] of renames) if (name.startsWith(from)) return to + name.slice(from.length);
  return null;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
