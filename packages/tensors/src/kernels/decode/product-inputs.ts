import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { isQuantized, type PackedFormat } from '../packed-matmul/formats.js';
import { PackedWeight } from '../packed-matmul/packed-weight.js';

/*
 * What decodeMatvec and prefillProduct share: they take the same inputs (rows of x, up to three
 * weights read in place, biases, an optional RMSNorm, LoRA terms, an epilogue) and differ only in
 * how the product is spread over invocations. The checks, the bindings and the uniforms are here.
 */

/**
 * What a fused decode product does after the dot products:
 * - 'store': out[r, offset_w + o] = sum (the weights' outputs side by side: q, k, v);
 * - 'swiglu': out[r, o] = silu(sum over weight 0) * (sum over weight 1) (gate, up), or over the
 *   two halves of one weight [2n, K], gate rows first (Phi-3's gate_up_proj);
 * - 'residual': out[r, o] += sum (o_proj or down_proj added to the residual stream in place).
 */
export type DecodeEpilogue = 'store' | 'swiglu' | 'residual';

export interface DecodeMatvecOptions {
  /** Rows [rows, K] f32 (the batch's hidden states or activations); K % 4 == 0. */
  x: Tensor;
  /**
   * Weights [n_w, K] in nn.Linear's [out, in] layout, read in place: 1 to 3 of them, all f32
   * tensors or all frozen PackedWeights of one format (one chunk each): f16 (the LoRA default
   * base) or bf16 halves widened in the kernel, or (decodeMatvec only) ggml Q8_0, Q4_0 or Q4_K
   * blocks decoded in the kernel by the packed matmul's decoders (QLoRA bases, GGUF imports).
   */
  weights: readonly (Tensor | PackedWeight)[];
  /** Biases [n_w] of the weights, all or none (added before the epilogue). */
  biases?: readonly Tensor[] | null;
  /** RMSNorm of each row of x (weight [K], eps) before the product, computed in the same kernel. */
  norm?: { weight: Tensor; eps: number } | null;
  epilogue: DecodeEpilogue;
  /**
   * The gate's activation of the 'swiglu' epilogue: SiLU (default) or (decodeMatvec only) GELU's
   * tanh form (Gemma's GeGLU, gelu_pytorch_tanh): out = act(gate) * up.
   */
  activation?: 'silu' | 'gelu_tanh';
  /** [rows, width] f32: written ('store', 'swiglu') or updated in place ('residual'). */
  out: Tensor;
  /**
   * decodeMatvec only: the column of `out` where the weights' outputs start (default 0); `out`
   * may then be wider than their width. A packed weight split in chunks of rows (a
   * vocabulary-wide head over one binding) is computed so: its chunks side by side, up to three
   * per dispatch, each dispatch writing its columns of the one output.
   */
  outColumn?: number;
  /**
   * LoRA's low-rank terms, added to each weight's sums before the bias and epilogue:
   * scale_w * B_w u_w, where u [rows, U] holds every adapted weight's A x side by side (a
   * decodeMatvec 'store' of the A matrices) and B_w [n_w, r_w] f32. One entry per weight, null
   * for a weight without an adapter. DoRA: `factor` [n_w] f32 (m / ||W + s B A|| per output)
   * multiplies the weight's sum with its low-rank term, before the bias.
   */
  lowRank?: {
    u: Tensor;
    terms: readonly ({ b: Tensor; offset: number; scale: number; factor?: Tensor | null } | null)[];
  } | null;
}

/** The products' uniforms; the WGSL of both kernels reads them under these names. */
export const PRODUCT_FIELDS: UniformField[] = [
  { name: 'k4', type: 'u32' },
  { name: 'n0', type: 'u32' },
  { name: 'n1', type: 'u32' },
  { name: 'n2', type: 'u32' },
  { name: 'start1', type: 'u32' },
  { name: 'start2', type: 'u32' },
  { name: 'blocks', type: 'u32' },
  { name: 'out_row', type: 'u32' },
  { name: 'eps', type: 'f32' },
  { name: 'inv_k', type: 'f32' },
  { name: 'rows', type: 'u32' },
  { name: 'u_row', type: 'u32' },
  { name: 'u_off0', type: 'u32' },
  { name: 'u_off1', type: 'u32' },
  { name: 'u_off2', type: 'u32' },
  { name: 'rank0', type: 'u32' },
  { name: 'rank1', type: 'u32' },
  { name: 'rank2', type: 'u32' },
  { name: 'scale0', type: 'f32' },
  { name: 'scale1', type: 'f32' },
  { name: 'scale2', type: 'f32' },
  { name: 'out_col', type: 'u32' },
  /** Bytes per weight row of a ggml-quantized weight (0 otherwise). */
  { name: 'row_bytes', type: 'u32' },
];

/** Storage of a product's weights: f32, halves, or (decodeMatvec) ggml blocks. */
export type ProductFormat = 'f32' | PackedFormat;
/** The formats every product kernel reads. */
export type HalfOrF32 = 'f32' | 'f16' | 'bf16';

type Term = NonNullable<DecodeMatvecOptions['lowRank']>['terms'][number];

/** A product's inputs, checked. */
export interface ProductInputs<F extends ProductFormat = HalfOrF32> {
  rows: number;
  K: number;
  /** Outputs of each weight (a stacked gate/up weight: half its rows). */
  n: number[];
  /** Columns of `out`. */
  width: number;
  format: F;
  biases: readonly Tensor[];
  lowRank: DecodeMatvecOptions['lowRank'];
  /** One entry per weight: its LoRA term or null. */
  terms: Term[];
  /** One swiglu weight holding gate and up stacked (Phi-3's gate_up_proj). */
  stacked: boolean;
}

/**
 * Checks a product's inputs, naming the kernel (`kernel`) and the input that is wrong.
 * `stacked`: whether one stacked gate/up weight may stand for two; `dora`: whether DoRA factors
 * are taken; `quantized`: whether ggml-quantized weights (Q8_0, Q4_0, Q4_K) are taken.
 */
export function checkProductInputs(
  kernel: string,
  options: DecodeMatvecOptions,
  allow: { stacked: boolean; dora: boolean; quantized: true; gelu?: boolean; outColumn?: boolean },
): ProductInputs<ProductFormat>;
export function checkProductInputs(
  kernel: string,
  options: DecodeMatvecOptions,
  allow: { stacked: boolean; dora: boolean; quantized?: false; gelu?: boolean; outColumn?: boolean },
): ProductInputs;
export function checkProductInputs(
  kernel: string,
  options: DecodeMatvecOptions,
  allow: { stacked: boolean; dora: boolean; quantized?: boolean; gelu?: boolean; outColumn?: boolean },
): ProductInputs<ProductFormat> {
  const { x, weights, epilogue, out } = options;
  if ((options.activation ?? 'silu') !== 'silu' && !allow.gelu)
    throw new TensorError(`${kernel}: takes no activation ${options.activation} (SiLU only)`);
  const biases = options.biases ?? [];
  if (
    biases.length > 0 &&
    (biases.length !== weights.length || biases.some((b, i) => b.size !== weights[i].shape[0]))
  ) {
    throw new TensorError(`${kernel}: give one bias [n_w] per weight, or none`);
  }
  const [rows, K] = x.shape;
  if (x.rank !== 2 || K % 4 !== 0 || x.dtype !== 'f32') {
    throw new TensorError(`${kernel}: x must be [rows, K] f32 with K % 4 == 0, got ${x.describe()}`);
  }
  const swigluWeights = allow.stacked ? weights.length > 2 : weights.length !== 2;
  if (weights.length < 1 || weights.length > 3 || (epilogue === 'swiglu' && swigluWeights)) {
    throw new TensorError(`${kernel}: ${weights.length} weights for epilogue ${epilogue}`);
  }
  const format = weightFormat(kernel, weights, allow.quantized ?? false);
  for (const w of weights) {
    const fits =
      w instanceof PackedWeight ? w.cols === K && w.chunks.length === 1 : w.rank === 2 && w.shape[1] === K;
    if (!fits) throw new TensorError(`${kernel}: weight ${w.describe()} does not take rows of ${K}`);
  }
  const stacked = epilogue === 'swiglu' && weights.length === 1;
  if (stacked && (weights[0].shape[0] % 2 !== 0 || biases.length > 0 || options.lowRank))
    throw new TensorError(
      `${kernel}: a stacked gate/up weight needs an even row count, and takes no bias or LoRA term`,
    );
  const n = stacked ? [weights[0].shape[0] / 2] : weights.map((w) => w.shape[0]);
  const width = epilogue === 'store' ? n.reduce((a, b) => a + b, 0) : n[0];
  if (epilogue === 'swiglu' && !stacked && n[1] !== n[0])
    throw new TensorError(`${kernel}: gate and up differ`);
  const outColumn = options.outColumn ?? 0;
  if (outColumn !== 0 && !allow.outColumn)
    throw new TensorError(`${kernel}: takes no outColumn (its outputs fill out's rows)`);
  if (!Number.isInteger(outColumn) || outColumn < 0)
    throw new TensorError(`${kernel}: outColumn ${outColumn} is not a column index`);
  const columns = outColumn === 0 ? width : `${outColumn} + ${width} columns`;
  if (
    out.rank !== 2 ||
    out.shape[0] !== rows ||
    (outColumn === 0 ? out.shape[1] !== width : out.shape[1] < outColumn + width) ||
    out.dtype !== 'f32'
  ) {
    throw new TensorError(`${kernel}: out ${out.describe()} is not [${rows}, ${columns}] f32`);
  }
  const lowRank = options.lowRank ?? null;
  const terms = lowRank ? weights.map((_, i) => lowRank.terms[i] ?? null) : weights.map(() => null);
  if (lowRank) {
    const [uRows, uWidth] = lowRank.u.shape;
    if (lowRank.terms.length !== weights.length || uRows !== rows || lowRank.u.dtype !== 'f32')
      throw new TensorError(
        `${kernel}: low-rank terms for ${weights.length} weights over u ${lowRank.u.describe()}`,
      );
    terms.forEach((term, i) => {
      if (!term) return;
      if (term.factor && !allow.dora)
        throw new TensorError(`${kernel}: DoRA factors are not supported (use decodeMatvec)`);
      const [bRows, rank] = term.b.shape;
      const factorFits = !term.factor || (term.factor.size === n[i] && term.factor.dtype === 'f32');
      if (
        term.b.rank !== 2 ||
        bRows !== n[i] ||
        term.b.dtype !== 'f32' ||
        term.offset + rank > uWidth ||
        !factorFits
      )
        throw new TensorError(
          `${kernel}: LoRA B ${term.b.describe()} does not fit weight ${i} over u ${lowRank.u.describe()}`,
        );
    });
  }
  return { rows, K, n, width, format, biases, lowRank, terms, stacked };
}

/** The bindings both kernels declare, in order: x, norm, weights, biases, u and B, DoRA factors, out. */
export function productBindings(
  options: DecodeMatvecOptions,
  inputs: ProductInputs<ProductFormat>,
): Tensor[] {
  const { x, norm, weights, out } = options;
  const { biases, lowRank, terms } = inputs;
  return [
    x,
    ...(norm ? [norm.weight] : []),
    ...weights.map((w) => (w instanceof PackedWeight ? w.chunks[0].words : w)),
    ...biases,
    ...(lowRank ? [lowRank.u, ...terms.flatMap((t) => (t ? [t.b] : []))] : []),
    ...terms.flatMap((t) => (t?.factor ? [t.factor] : [])),
    out,
  ];
}

/** The uniforms (PRODUCT_FIELDS) of a product whose weights' outputs take `perWeight` blocks each. */
export function productUniforms(
  options: DecodeMatvecOptions,
  inputs: ProductInputs<ProductFormat>,
  perWeight: readonly number[],
): Record<string, number> {
  const { n, K, rows, lowRank, terms } = inputs;
  return {
    k4: K / 4,
    n0: n[0],
    n1: n[1] ?? 0,
    n2: n[2] ?? 0,
    start1: perWeight[0],
    start2: perWeight[0] + (perWeight[1] ?? 0),
    blocks: perWeight.reduce((a, b) => a + b, 0),
    out_row: options.out.shape[1],
    eps: options.norm?.eps ?? 0,
    inv_k: 1 / K,
    rows,
    u_row: lowRank ? lowRank.u.shape[1] : 0,
    u_off0: terms[0]?.offset ?? 0,
    u_off1: terms[1]?.offset ?? 0,
    u_off2: terms[2]?.offset ?? 0,
    rank0: terms[0]?.b.shape[1] ?? 0,
    rank1: terms[1]?.b.shape[1] ?? 0,
    rank2: terms[2]?.b.shape[1] ?? 0,
    scale0: terms[0]?.scale ?? 0,
    scale1: terms[1]?.scale ?? 0,
    scale2: terms[2]?.scale ?? 0,
    out_col: options.outColumn ?? 0,
    row_bytes: isQuantized(inputs.format as PackedFormat) ? (options.weights[0] as PackedWeight).rowBytes : 0,
  };
}

/** The weights' common storage: f32 tensors, or packed weights of one format. */
function weightFormat(
  kernel: string,
  weights: readonly (Tensor | PackedWeight)[],
  quantized: boolean,
): ProductFormat {
  const formats = new Set(
    weights.map((w) =>
      w instanceof PackedWeight ? w.format : w.dtype === 'f32' ? 'f32' : `a ${w.dtype} tensor`,
    ),
  );
  const [format] = formats;
  const takes = ['f32', 'f16', 'bf16', ...(quantized ? ['q8_0', 'q4_0', 'q4_k'] : [])];
  if (formats.size !== 1 || !takes.includes(format)) {
    const packed = quantized ? 'f16/bf16/q8_0/q4_0/q4_k' : 'f16/bf16';
    throw new TensorError(
      `${kernel}: weights must be all f32 tensors or all ${packed} packed weights of one format, got ${[...formats].join(', ')}`,
    );
  }
  return format as ProductFormat;
}

/** WGSL that loads vec4 `at` of a weight stored as `format` (f16 and bf16 halves widened to f32). */
export function loadWeight(format: HalfOrF32, name: string, at: string): string {
  if (format === 'f32') return `${name}[${at}]`;
  const word = (i: number) => `${name}[2u * (${at}) + ${i}u]`;
  if (format === 'f16') return `vec4<f32>(unpack2x16float(${word(0)}), unpack2x16float(${word(1)}))`;
  const pair = (i: number) => `bitcast<f32>(${word(i)} << 16u), bitcast<f32>(${word(i)} & 0xffff0000u)`;
  return `vec4<f32>(${pair(0)}, ${pair(1)})`;
}

/** Whether a workgroup of `lanes` invocations is always one subgroup on this device. */
export function subgroupsCover(device: Device, lanes: number): boolean {
  const info = (device.gpu as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return device.gpu.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= lanes;
}
