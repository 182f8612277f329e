import { TensorError } from '../../device/errors.js';
import { formatShape, sizeOf } from '../../tensor/shape.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { vectorRange } from './operand-plan.js';

/**
 * A low-rank product added to a matmul's output: alpha L op(R), with L [..., M, r] holding the
 * product's rows the way a does (a's batch folded into M), and R laid out like b: [N, r] with
 * transposeB, else [r, N]. LoRA's s (x A^T) B^T on the base projection x W^T, and dh A on the
 * base layer's input gradient dy W. Fused into the register kernel's epilogue (one dispatch, no
 * read-modify-write of the output) where `fusableLowRank` allows, else a second product that takes
 * the first as its residual.
 */
export interface LowRankTerm {
  a: Tensor;
  b: Tensor;
  /** Default 1. */
  alpha?: number;
}

/** Checks the term's shapes against the product [..., M, N]; returns r. */
export function checkLowRank(
  term: LowRankTerm,
  outShape: readonly number[],
  transposeB: boolean,
  dtype: string,
  describe: () => string,
): number {
  const { a, b } = term;
  a.assertLive();
  b.assertLive();
  const r = a.shape.at(-1) ?? 0;
  const [M, N] = outShape.slice(-2);
  const expectB = transposeB ? [N, r] : [r, N];
  const fail = (what: string) =>
    new TensorError(`matmul: lowRank ${what} (product ${formatShape(outShape)}: ${describe()})`);
  if (a.device !== b.device) throw fail('operands live on another device');
  if (a.dtype !== dtype || b.dtype !== dtype) throw fail(`operands must be ${dtype}`);
  if (a.rank < 2 || sizeOf(a.shape.slice(0, -1)) !== sizeOf(outShape.slice(0, -1)) || a.shape.at(-2) !== M)
    throw fail(`a must be [..., ${M}, r] with the output's rows, got ${a.describe()}`);
  if (b.rank !== 2 || b.shape[0] !== expectB[0] || b.shape[1] !== expectB[1])
    throw fail(`b must be ${formatShape(expectB)}, got ${b.describe()}`);
  if (!Number.isFinite(term.alpha ?? 1)) throw fail(`alpha must be finite, got ${term.alpha}`);
  return r;
}

/**
 * Whether the register kernel can add the term in its epilogue: f32, r a multiple of 4, nothing
 * split in chunks, and (R read along N) N a multiple of 4.
 */
export function fusableLowRank(term: LowRankTerm, N: number, transposeB: boolean): boolean {
  const { a, b } = term;
  const r = a.shape.at(-1) ?? 0;
  return (
    a.dtype === 'f32' &&
    b.dtype === 'f32' &&
    r > 0 &&
    r % 4 === 0 &&
    !a.chunked &&
    !b.chunked &&
    (transposeB || N % 4 === 0)
  );
}

/** The bindings and uniform values of a fused term for a launch of rows m0.. and columns n0... */
export function lowRankLaunch(
  term: LowRankTerm,
  transposeB: boolean,
  N: number,
  m0: number,
  n0: number,
): { bindings: BufferRange[]; values: Record<string, number> } {
  const { a, b } = term;
  const r4 = (a.shape.at(-1) ?? 0) / 4;
  const aRange = vectorRange(a.binding('matmul'));
  const bRange = vectorRange(b.binding('matmul'));
  return {
    bindings: [aRange, bRange],
    values: {
      lr_a_offset: aRange.offset / 16 + m0 * r4,
      lr_b_offset: bRange.offset / 16 + (transposeB ? n0 * r4 : n0 / 4),
      lr_b_line: N / 4,
      lr_k4: r4,
      lr_alpha: term.alpha ?? 1,
    },
  };
}
