import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { formatShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';

/**
 * Which dimensions form a rotated pair.
 * - 'half': i and i + rotaryDim/2 (Hugging Face `rotate_half`, GPT-NeoX, Llama in transformers).
 * - 'interleaved': 2i and 2i + 1 (original Meta Llama, llama2.c, GPT-J).
 */
export type RotaryStyle = 'half' | 'interleaved';

export interface RotaryOptions {
  style: RotaryStyle;
  /** Leading dimensions of each head that rotate (even, <= headDim); the rest pass through. Default headDim. */
  rotaryDim?: number;
  /** Rotate by the opposite angle (sin negated in the kernel): the transpose, rotary's backward. */
  inverse?: boolean;
}

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'pairs', type: 'u32' as const },
  { name: 'items_per_row', type: 'u32' as const },
  { name: 'head_dim', type: 'u32' as const },
  { name: 'heads', type: 'u32' as const },
  { name: 'seq', type: 'u32' as const },
  { name: 'table_batch_stride', type: 'u32' as const },
];

/**
 * Rotary position embedding of x [batch, seq, heads, headDim] with tables cos, sin of shape
 * [seq, rotaryDim/2] (every batch row at the same positions) or [batch, seq, rotaryDim/2]. For
 * pair (a, b) of frequency i at token (batch, s):
 *   out_a = x_a cos[.., s, i] - x_b sin[.., s, i],   out_b = x_b cos[.., s, i] + x_a sin[.., s, i].
 * Dimensions at and after rotaryDim are copied. Returns a new tensor of x's dtype (f32 or f16);
 * the tables may be f32 or f16. Build the tables with `rotaryTables()`.
 */
export function rotary(x: Tensor, cos: Tensor, sin: Tensor, options: RotaryOptions): Tensor {
  for (const t of [x, cos, sin]) t.assertLive();
  const describe = () =>
    `rotary(x ${x.dtype}${formatShape(x.shape)}, cos ${cos.dtype}${formatShape(cos.shape)}, sin ${sin.dtype}${formatShape(sin.shape)})`;
  if (options.style !== 'half' && options.style !== 'interleaved') {
    throw new TensorError(`${describe()}: style must be 'half' or 'interleaved', got '${options.style}'`);
  }
  if (x.rank !== 4) throw new TensorError(`${describe()}: x must be [batch, seq, heads, headDim]`);
  if (cos.device !== x.device || sin.device !== x.device) {
    throw new TensorError(`${describe()}: tensors live on different devices`);
  }
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new TensorError(`${describe()}: x must be f32 or f16`);
  if ((cos.dtype !== 'f32' && cos.dtype !== 'f16') || sin.dtype !== cos.dtype) {
    throw new TensorError(`${describe()}: cos and sin must share one float dtype`);
  }
  const [batch, seq, heads, headDim] = x.shape;
  const rotaryDim = options.rotaryDim ?? headDim;
  if (!Number.isInteger(rotaryDim) || rotaryDim <= 0 || rotaryDim % 2 !== 0 || rotaryDim > headDim) {
    throw new TensorError(
      `${describe()}: rotaryDim ${rotaryDim} must be a positive even number no larger than headDim ${headDim}`,
    );
  }
  const pairs = rotaryDim / 2;
  const sameShape = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((d, i) => d === b[i]);
  if (!sameShape(cos.shape, sin.shape)) throw new TensorError(`${describe()}: cos and sin shapes differ`);
  let tableBatchStride: number;
  if (sameShape(cos.shape, [seq, pairs])) tableBatchStride = 0;
  else if (sameShape(cos.shape, [batch, seq, pairs])) tableBatchStride = seq * pairs;
  else {
    throw new TensorError(
      `${describe()}: tables must be [seq, rotaryDim/2] = ${formatShape([seq, pairs])} or [batch, seq, rotaryDim/2] = ${formatShape([batch, seq, pairs])}`,
    );
  }

  const device = x.device;
  const out = device.empty(x.shape, x.dtype);
  const itemsPerRow = headDim - pairs;
  const n = batch * seq * heads * itemsPerRow;
  if (n === 0) return out;
  const wg = device.tuning.elementwiseWorkgroup;
  if (
    options.style === 'half' &&
    x.dtype === 'f32' &&
    cos.dtype === 'f32' &&
    rotaryDim === headDim &&
    pairs % 4 === 0
  ) {
    rotaryQuads(x, cos, sin, out, { pairs, heads, seq, tableBatchStride, inverse: options.inverse === true });
    return out;
  }
  const [first, second] = options.style === 'half' ? ['j', 'j + params.pairs'] : ['2u * j', '2u * j + 1u'];
  const store = (value: string) => (x.dtype === 'f16' ? `f16(${value})` : value);
  device.dispatch({
    key: `${KERNELS.rotary}:${options.style}:${x.dtype}:${cos.dtype}${options.inverse ? ':inverse' : ''}`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'x', type: x.dtype, access: 'read' },
          { name: 'cos_table', type: cos.dtype, access: 'read' },
          { name: 'sin_table', type: cos.dtype, access: 'read' },
          { name: 'out', type: x.dtype, access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: wg,
        body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  let row = index / params.items_per_row;
  let j = index % params.items_per_row;
  let base = row * params.head_dim;
  if (j >= params.pairs) {
    // Past the rotated pairs: dimension rotaryDim + (j - pairs) passes through.
    let d = base + j + params.pairs;
    out[d] = x[d];
    return;
  }
  let token = row / params.heads;
  let s = token % params.seq;
  let b = token / params.seq;
  let t = b * params.table_batch_stride + s * params.pairs + j;
  let c = f32(cos_table[t]);
  let sn = ${options.inverse ? '-' : ''}f32(sin_table[t]);
  let first = base + ${first};
  let second = base + ${second};
  let a = f32(x[first]);
  let other = f32(x[second]);
  out[first] = ${store('a * c - other * sn')};
  out[second] = ${store('other * c + a * sn')};`,
      }),
    bindings: [x, cos, sin, out],
    uniforms: {
      fields: FIELDS,
      values: {
        n,
        pairs,
        items_per_row: itemsPerRow,
        head_dim: headDim,
        heads,
        seq,
        table_batch_stride: tableBatchStride,
      },
    },
    workgroups: grid(workgroupsFor(n, wg), device.maxWorkgroupsPerDimension),
  });
  return out;
}

/**
 * rotary() for the common f32 case (half style, every dimension rotated, rotaryDim / 2 a multiple
 * of 4): one invocation per 4 pairs of a head row, each loading a vec4 of the first half, of the
 * second half and of both tables, with no pass-through branch. A head dim of 8 (stories260K) takes
 * one invocation per head row instead of four, which made a training step's 20 rotary dispatches
 * cheaper on lavapipe (docs/architecture/kernel-selection.md).
 */
function rotaryQuads(
  x: Tensor,
  cos: Tensor,
  sin: Tensor,
  out: Tensor,
  shape: { pairs: number; heads: number; seq: number; tableBatchStride: number; inverse: boolean },
): void {
  const device = x.device;
  const [batch, seq, heads] = x.shape;
  const quads = shape.pairs / 4;
  const n = batch * seq * heads * quads;
  const wg = device.tuning.elementwiseWorkgroup;
  device.dispatch({
    key: `${KERNELS.rotary}:half:quads:f32${shape.inverse ? ':inverse' : ''}`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'x', type: 'vec4<f32>', access: 'read' },
          { name: 'cos_table', type: 'vec4<f32>', access: 'read' },
          { name: 'sin_table', type: 'vec4<f32>', access: 'read' },
          { name: 'out', type: 'vec4<f32>', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: wg,
        body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  // items_per_row: quads per head row; pairs: quads per half row (the same here).
  let row = index / params.items_per_row;
  let quad = index % params.items_per_row;
  let token = row / params.heads;
  let s = token % params.seq;
  let b = token / params.seq;
  let t = (b * params.table_batch_stride + s * params.pairs) / 4u + quad;
  let c = cos_table[t];
  let sn = ${shape.inverse ? '-' : ''}sin_table[t];
  let first = row * params.head_dim / 4u + quad;
  let second = first + params.pairs / 4u;
  let a = x[first];
  let other = x[second];
  out[first] = a * c - other * sn;
  out[second] = other * c + a * sn;`,
      }),
    bindings: [x, cos, sin, out],
    uniforms: {
      fields: FIELDS,
      values: {
        n,
        pairs: shape.pairs,
        items_per_row: quads,
        head_dim: 2 * shape.pairs,
        heads,
        seq,
        table_batch_stride: shape.tableBatchStride,
      },
    },
    workgroups: grid(workgroupsFor(n, wg), device.maxWorkgroupsPerDimension),
  });
}
