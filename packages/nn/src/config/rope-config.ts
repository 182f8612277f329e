import type { RopeScaling } from '@webtune/tensors';
import { ModelError } from '../errors.js';
import { isObject, type Json, positiveInteger, positiveNumber, positiveNumberList } from './config-fields.js';

/** The base and scaling of one set of rotary tables. */
export interface RopeSettings {
  theta: number;
  scaling: RopeScaling | null;
}

/** Everything config.json says about rotary positions. */
export interface RopeConfig extends RopeSettings {
  /** Fraction of each head's dims that rotate (Phi-3 `partial_rotary_factor`; 1 elsewhere). */
  partialRotaryFactor: number;
  /** Tables of the sliding-window layers when they differ (Gemma 3's local base); null: the same. */
  local: RopeSettings | null;
}

/**
 * Reads rotary settings from either layout Hugging Face writes: the Hub's `rope_theta` +
 * `rope_scaling` (+ Gemma 3's `rope_local_base_freq`), or transformers 5's `rope_parameters`,
 * flat or per layer type (`full_attention` / `sliding_attention`).
 */
export function readRopeConfig(
  json: Json,
  maxPositionEmbeddings: number,
  defaults: { theta: number; localTheta?: number },
): RopeConfig {
  const parameters = json.rope_parameters;
  let global: Json;
  let local: Json | null = null;
  if (
    isObject(parameters) &&
    (isObject(parameters.full_attention) || isObject(parameters.sliding_attention))
  ) {
    global = isObject(parameters.full_attention) ? parameters.full_attention : {};
    local = isObject(parameters.sliding_attention) ? parameters.sliding_attention : {};
  } else if (isObject(parameters)) {
    global = parameters;
  } else {
    const scaling = json.rope_scaling;
    if (scaling != null && !isObject(scaling)) {
      throw new ModelError(
        `config.json: rope_scaling must be an object or null, got ${JSON.stringify(scaling)}`,
      );
    }
    global = { ...(scaling ?? {}) };
    if (json.rope_theta != null) global.rope_theta = json.rope_theta;
    if (defaults.localTheta !== undefined) {
      local = json.rope_local_base_freq == null ? {} : { rope_theta: json.rope_local_base_freq };
    }
  }
  const prefix = isObject(parameters) ? 'rope_parameters.' : '';
  const theta = positiveNumber(
    global,
    'rope_theta',
    json.rope_theta == null ? defaults.theta : positiveNumber(json, 'rope_theta', undefined),
    prefix,
  );
  const partial = global.partial_rotary_factor ?? json.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) {
    throw new ModelError(
      `config.json: partial_rotary_factor must be in (0, 1], got ${JSON.stringify(partial)}`,
    );
  }
  return {
    theta,
    scaling: readRopeScaling(global, json, maxPositionEmbeddings, prefix),
    partialRotaryFactor: partial,
    local:
      local === null
        ? null
        : {
            theta: positiveNumber(local, 'rope_theta', defaults.localTheta ?? theta, prefix),
            scaling: readRopeScaling(local, json, maxPositionEmbeddings, prefix),
          },
  };
}

function readRopeScaling(
  fields: Json,
  json: Json,
  maxPositionEmbeddings: number,
  prefix: string,
): RopeScaling | null {
  const type = fields.rope_type ?? fields.type;
  if (type == null || type === 'default') return null;
  const where = prefix || 'rope_scaling.';
  const original = (fallback: number) => {
    if (fields.original_max_position_embeddings != null) {
      return positiveInteger(fields, 'original_max_position_embeddings', where);
    }
    return fallback;
  };
  if (type === 'longrope' || type === 'su') {
    const originalMax = original(
      json.original_max_position_embeddings == null
        ? maxPositionEmbeddings
        : positiveInteger(json, 'original_max_position_embeddings'),
    );
    const scaling: RopeScaling = {
      type: 'longrope',
      factor: positiveNumber(fields, 'factor', maxPositionEmbeddings / originalMax, where),
      originalMaxPositionEmbeddings: originalMax,
      shortFactor: positiveNumberList(fields, 'short_factor', where),
      longFactor: positiveNumberList(fields, 'long_factor', where),
    };
    if (fields.attention_factor != null) {
      scaling.attentionFactor = positiveNumber(fields, 'attention_factor', undefined, where);
    }
    return scaling;
  }
  const factor = positiveNumber(fields, 'factor', undefined, where);
  switch (type) {
    case 'linear':
      return { type: 'linear', factor };
    case 'dynamic':
      return { type: 'dynamic', factor, originalMaxPositionEmbeddings: original(maxPositionEmbeddings) };
    case 'llama3':
      return {
        type: 'llama3',
        factor,
        lowFreqFactor: positiveNumber(fields, 'low_freq_factor', 1, where),
        highFreqFactor: positiveNumber(fields, 'high_freq_factor', 4, where),
        originalMaxPositionEmbeddings: original(8192),
      };
    case 'yarn': {
      const optional = (key: string) =>
        fields[key] == null ? undefined : positiveNumber(fields, key, undefined, where);
      const scaling: RopeScaling = {
        type: 'yarn',
        factor,
        originalMaxPositionEmbeddings: original(maxPositionEmbeddings),
      };
      const extras = {
        betaFast: optional('beta_fast'),
        betaSlow: optional('beta_slow'),
        attentionFactor: optional('attention_factor'),
        mscale: optional('mscale'),
        mscaleAllDim: optional('mscale_all_dim'),
        truncate: fields.truncate == null ? undefined : fields.truncate !== false,
      };
      for (const [key, value] of Object.entries(extras)) {
        if (value !== undefined) (scaling as Record<string, unknown>)[key] = value;
      }
      return scaling;
    }
    default:
      throw new ModelError(
        `config.json: ${where}rope_type ${JSON.stringify(type)} is not supported; supported: linear, dynamic, llama3, yarn, longrope`,
      );
  }
}

/** rope_scaling as config.json spells it (the Hub layout), over the fields it was read from. */
export function ropeScalingToJson(scaling: RopeScaling | null, original: unknown): Json | null {
  if (!scaling) return null;
  const base = isObject(original) ? { ...original } : {};
  base.rope_type = scaling.type;
  base.factor = scaling.factor;
  if ('originalMaxPositionEmbeddings' in scaling) {
    base.original_max_position_embeddings = scaling.originalMaxPositionEmbeddings;
  }
  if (scaling.type === 'llama3') {
    base.low_freq_factor = scaling.lowFreqFactor;
    base.high_freq_factor = scaling.highFreqFactor;
  }
  if (scaling.type === 'longrope') {
    base.short_factor = [...scaling.shortFactor];
    base.long_factor = [...scaling.longFactor];
    if (scaling.attentionFactor !== undefined) base.attention_factor = scaling.attentionFactor;
  }
  if (scaling.type === 'yarn') {
    const keys: [keyof typeof scaling, string][] = [
      ['betaFast', 'beta_fast'],
      ['betaSlow', 'beta_slow'],
      ['attentionFactor', 'attention_factor'],
      ['mscale', 'mscale'],
      ['mscaleAllDim', 'mscale_all_dim'],
      ['truncate', 'truncate'],
    ];
    for (const [key, jsonKey] of keys) if (scaling[key] !== undefined) base[jsonKey] = scaling[key];
  }
  return base;
}
