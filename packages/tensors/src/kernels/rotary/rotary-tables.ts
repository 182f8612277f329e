import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { Tensor } from '../../tensor/tensor.js';

/**
 * Context-extension schemes for rotary frequencies, the `rope_scaling` types of Hugging Face
 * transformers (modeling_rope_utils). Key names are HF's, spelled in camelCase.
 */
export type RopeScaling =
  | {
      /**
       * Position interpolation (Chen et al. 2023): every position is divided by `factor`, which is
       * the same as dividing every inverse frequency: inv_freq'_i = inv_freq_i / factor.
       */
      type: 'linear';
      factor: number;
    }
  | {
      /**
       * Dynamic NTK-aware scaling: when the sequence outgrows the trained context, the base is
       * raised so the lowest frequency stretches over the new length:
       *   base' = base * ((factor * L / L0) - (factor - 1)) ^ (dim / (dim - 2)),
       *   L = max(sequenceLength, L0), L0 = originalMaxPositionEmbeddings,
       * so base' = base while L <= L0. inv_freq'_i = base'^(-2i/dim).
       */
      type: 'dynamic';
      factor: number;
      /** L0: the context the model was trained on (HF: `max_position_embeddings`). */
      originalMaxPositionEmbeddings: number;
      /** L: the current sequence length; default max(positions) + 1. */
      sequenceLength?: number;
    }
  | {
      /**
       * Llama 3.1 scaling. With L0 = originalMaxPositionEmbeddings, wavelength w_i = 2 pi / inv_freq_i,
       * low_wavelen = L0 / lowFreqFactor, high_wavelen = L0 / highFreqFactor:
       *   w_i < high_wavelen            -> inv_freq_i                     (high frequencies kept)
       *   w_i > low_wavelen             -> inv_freq_i / factor            (low frequencies interpolated)
       *   otherwise, with smooth = (L0 / w_i - lowFreqFactor) / (highFreqFactor - lowFreqFactor):
       *                                 -> (1 - smooth) * inv_freq_i / factor + smooth * inv_freq_i
       */
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | {
      /**
       * YaRN (Peng et al. 2023). With L0 = originalMaxPositionEmbeddings,
       *   correction_dim(r) = dim * ln(L0 / (2 pi r)) / (2 ln base)
       *   low = max(floor(correction_dim(betaFast)), 0), high = min(ceil(correction_dim(betaSlow)), dim - 1)
       *     (no floor/ceil when truncate is false; high += 0.001 when low == high)
       *   ramp_i = clamp((i - low) / (high - low), 0, 1) for i in [0, dim/2)
       *   extrapolation_i = 1 - ramp_i
       *   inv_freq'_i = inv_freq_i / factor * (1 - extrapolation_i) + inv_freq_i * extrapolation_i
       * and cos and sin are multiplied by the attention factor:
       *   attentionFactor if given, else mscale(factor, mscale) / mscale(factor, mscaleAllDim) when both
       *   mscale and mscaleAllDim are given, else mscale(factor, 1),
       *   where mscale(s, m) = 1 if s <= 1 else 0.1 * m * ln(s) + 1.
       */
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      /** Default 32. */
      betaFast?: number;
      /** Default 1. */
      betaSlow?: number;
      attentionFactor?: number;
      mscale?: number;
      mscaleAllDim?: number;
      /** Round the correction range to whole dimensions (HF default true). */
      truncate?: boolean;
    }
  | {
      /**
       * LongRoPE (Phi-3, Phi-4-mini). With L0 = originalMaxPositionEmbeddings and L the sequence
       * length (max(positions) + 1 unless given), one rescale factor per frequency:
       *   inv_freq'_i = inv_freq_i / (L > L0 ? longFactor_i : shortFactor_i)
       * and cos and sin are multiplied by the attention factor: attentionFactor if given, else
       * sqrt(1 + ln(factor) / ln(L0)) when factor > 1, else 1. `factor` is HF's `factor`, or
       * max_position_embeddings / L0 when the config leaves it out.
       * The tables only rotate the positions they are given: keys cached while L <= L0 keep the
       * short rotation, so a caller crossing L0 runs the sequence again (as @webtune/nn's
       * generation does, and Transformers' Phi-3 means to).
       */
      type: 'longrope';
      factor: number;
      originalMaxPositionEmbeddings: number;
      /** dim / 2 factors each. */
      shortFactor: readonly number[];
      longFactor: readonly number[];
      attentionFactor?: number;
      /** L: the current sequence length; default max(positions) + 1. */
      sequenceLength?: number;
    };

export interface RotaryFrequencies {
  /** inv_freq_i for i in [0, dim/2), float64. */
  inverseFrequencies: Float64Array;
  /** Multiplies cos and sin (YaRN's attention factor; 1 otherwise). */
  attentionFactor: number;
}

/**
 * Rotary inverse frequencies inv_freq_i = base^(-2i/dim), i in [0, dim/2), adjusted by a
 * `rope_scaling` scheme. Computed on the host in float64. `dim` is the rotated width (rotaryDim).
 */
export function rotaryFrequencies(options: {
  dim: number;
  base?: number;
  scaling?: RopeScaling;
  /** Used by 'dynamic' and 'longrope' when scaling.sequenceLength is absent. */
  sequenceLength?: number;
}): RotaryFrequencies {
  const { dim, scaling } = options;
  let base = options.base ?? 10000;
  if (!Number.isInteger(dim) || dim <= 0 || dim % 2 !== 0) {
    throw new TensorError(`rotaryTables: dim ${dim} must be a positive even integer`);
  }
  if (!(base > 1)) throw new TensorError(`rotaryTables: base ${base} must be above 1`);
  if (scaling && !(scaling.factor > 0)) {
    throw new TensorError(
      `rotaryTables: ${scaling.type} scaling needs a positive factor, got ${scaling.factor}`,
    );
  }
  if (scaling?.type === 'dynamic') {
    const original = scaling.originalMaxPositionEmbeddings;
    const length = Math.max(scaling.sequenceLength ?? options.sequenceLength ?? original, original);
    if (dim <= 2) throw new TensorError(`rotaryTables: dynamic scaling needs dim > 2, got ${dim}`);
    base = base * ((scaling.factor * length) / original - (scaling.factor - 1)) ** (dim / (dim - 2));
  }
  const half = dim / 2;
  const inverse = new Float64Array(half);
  for (let i = 0; i < half; i++) inverse[i] = 1 / base ** ((2 * i) / dim);
  let attentionFactor = 1;
  switch (scaling?.type) {
    case undefined:
    case 'dynamic':
      break;
    case 'linear':
      for (let i = 0; i < half; i++) inverse[i] /= scaling.factor;
      break;
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: original } = scaling;
      if (!(highFreqFactor > lowFreqFactor)) {
        throw new TensorError(
          `rotaryTables: llama3 scaling needs highFreqFactor (${highFreqFactor}) above lowFreqFactor (${lowFreqFactor})`,
        );
      }
      const lowWavelength = original / lowFreqFactor;
      const highWavelength = original / highFreqFactor;
      for (let i = 0; i < half; i++) {
        const wavelength = (2 * Math.PI) / inverse[i];
        if (wavelength < highWavelength) continue;
        if (wavelength > lowWavelength) {
          inverse[i] /= factor;
          continue;
        }
        const smooth = (original / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inverse[i] = ((1 - smooth) * inverse[i]) / factor + smooth * inverse[i];
      }
      break;
    }
    case 'yarn': {
      const { factor, originalMaxPositionEmbeddings: original } = scaling;
      const betaFast = scaling.betaFast ?? 32;
      const betaSlow = scaling.betaSlow ?? 1;
      const truncate = scaling.truncate ?? true;
      const correctionDim = (rotations: number) =>
        (dim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
      let low = correctionDim(betaFast);
      let high = correctionDim(betaSlow);
      if (truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001;
      for (let i = 0; i < half; i++) {
        const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
        const extrapolation = 1 - ramp;
        inverse[i] = (inverse[i] / factor) * (1 - extrapolation) + inverse[i] * extrapolation;
      }
      const mscale = (scale: number, m: number) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      if (scaling.attentionFactor !== undefined) attentionFactor = scaling.attentionFactor;
      else if (scaling.mscale && scaling.mscaleAllDim) {
        attentionFactor = mscale(factor, scaling.mscale) / mscale(factor, scaling.mscaleAllDim);
      } else attentionFactor = mscale(factor, 1);
      break;
    }
    case 'longrope': {
      const { factor, originalMaxPositionEmbeddings: original, shortFactor, longFactor } = scaling;
      for (const [name, list] of [
        ['shortFactor', shortFactor],
        ['longFactor', longFactor],
      ] as const) {
        if (list.length !== half || list.some((value) => !(value > 0))) {
          throw new TensorError(
            `rotaryTables: longrope ${name} must hold ${half} positive numbers (dim ${dim} / 2), got ${list.length}`,
          );
        }
      }
      const length = scaling.sequenceLength ?? options.sequenceLength ?? 0;
      const factors = length > original ? longFactor : shortFactor;
      for (let i = 0; i < half; i++) inverse[i] /= factors[i];
      if (scaling.attentionFactor !== undefined) attentionFactor = scaling.attentionFactor;
      else attentionFactor = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
      break;
    }
    default:
      throw new TensorError(`rotaryTables: unknown scaling type ${(scaling as { type: string }).type}`);
  }
  return { inverseFrequencies: inverse, attentionFactor };
}

export interface RotaryTablesOptions {
  /**
   * Position of each token: one list (tables [seq, dim/2]) or one list per batch row, all of the
   * same length (tables [batch, seq, dim/2]), e.g. for left-padded rows or a KV-cache offset.
   */
  positions?: ArrayLike<number> | readonly ArrayLike<number>[];
  /** Positions 0..seqLen-1 when `positions` is absent. */
  seqLen?: number;
  /** Rotated width (rotaryDim), even. */
  dim: number;
  /** Default 10000 (HF `rope_theta`). */
  base?: number;
  scaling?: RopeScaling;
  /** Table dtype, default f32. */
  dtype?: 'f32' | 'f16';
}

/**
 * Host values of the rotary tables in float64: cos[p, i] = cos(pos_p * inv_freq_i) * a and
 * sin[p, i] = sin(pos_p * inv_freq_i) * a, with a the attention factor (1 except YaRN).
 */
export function rotaryTableValues(options: RotaryTablesOptions): {
  cos: Float64Array;
  sin: Float64Array;
  shape: number[];
} {
  const { positions, seqLen } = options;
  let rows: ArrayLike<number>[];
  let batched = false;
  if (positions !== undefined) {
    batched = positions.length > 0 && typeof (positions as ArrayLike<unknown>)[0] !== 'number';
    rows = batched ? [...(positions as readonly ArrayLike<number>[])] : [positions as ArrayLike<number>];
  } else {
    if (seqLen === undefined || !Number.isInteger(seqLen) || seqLen < 0) {
      throw new TensorError(`rotaryTables: give positions or a non-negative integer seqLen (got ${seqLen})`);
    }
    rows = [Array.from({ length: seqLen }, (_, i) => i)];
  }
  const length = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== length)) {
    throw new TensorError('rotaryTables: every batch row of positions must have the same length');
  }
  let maxPosition = -1;
  for (const r of rows) for (let i = 0; i < r.length; i++) maxPosition = Math.max(maxPosition, r[i]);
  const { inverseFrequencies, attentionFactor } = rotaryFrequencies({
    dim: options.dim,
    base: options.base,
    scaling: options.scaling,
    sequenceLength: maxPosition + 1,
  });
  const half = options.dim / 2;
  const cos = new Float64Array(rows.length * length * half);
  const sin = new Float64Array(cos.length);
  rows.forEach((r, b) => {
    for (let p = 0; p < length; p++) {
      for (let i = 0; i < half; i++) {
        const angle = r[p] * inverseFrequencies[i];
        const at = (b * length + p) * half + i;
        cos[at] = Math.cos(angle) * attentionFactor;
        sin[at] = Math.sin(angle) * attentionFactor;
      }
    }
  });
  return { cos, sin, shape: batched ? [rows.length, length, half] : [length, half] };
}

/**
 * The cos and sin tables that `rotary()` takes, computed on the host in float64 and uploaded:
 * [seq, dim/2], or [batch, seq, dim/2] when `positions` has one list per batch row.
 */
export function rotaryTables(device: Device, options: RotaryTablesOptions): { cos: Tensor; sin: Tensor } {
  const { cos, sin, shape } = rotaryTableValues(options);
  const dtype = options.dtype ?? 'f32';
  return { cos: device.fromArray(cos, shape, dtype), sin: device.fromArray(sin, shape, dtype) };
}
