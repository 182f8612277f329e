import { type Shape, sameShape } from '../tensor/shape.js';
import type { LowRankLinearOptions, LowRankLinearResult, MatmulOptions } from './backend.js';
import type { BackwardContext, Rule } from './engine.js';
import { type Args, type Ops, rule, shapeOf, sumTo, type T } from './rule-builder.js';

/*
 * The gradient rules of the products: matmul (with its bias, residual and low-rank epilogues) and
 * lowRankLinear (LoRA's x W^T + s (x D^T) U^T). Their input gradients reuse the same epilogues:
 * an earlier sum for the input is absorbed as the product's residual.
 */

export const LINEAR_RULES = {
  // alpha op(A) op(B) + bias + residual (+ a low-rank term): the factors go into the gradients' products.
  matmul: rule(
    (args) => {
      const options = args[2] as MatmulOptions<T> | undefined;
      const low = options?.lowRank;
      return [
        args[0],
        args[1],
        options?.bias ?? null,
        options?.residual ?? null,
        low?.a ?? null,
        low?.b ?? null,
      ];
    },
    (o, [a, b, options]) => o.matmul(a as T, b as T, options as MatmulOptions<T> | undefined),
    (o, g, [a, b, lowA, lowB], c) => {
      const options = (c.args[2] as MatmulOptions<T> | undefined) ?? {};
      const { transposeA = false, transposeB = false, alpha = 1 } = options;
      const lowAlpha = options.lowRank?.alpha ?? 1;
      return [
        c.needs[0] && inputGradient(o, g, b, c, { transposeA, transposeB, alpha }),
        c.needs[1] &&
          sumTo(o, matmulGradB(o, g, a, transposeA, transposeB, shapeOf(c, 1), alpha), shapeOf(c, 1)),
        c.needs[2] && sumTo(o, g, shapeOf(c, 2)),
        c.needs[3] && sumTo(o, g, shapeOf(c, 3)),
        c.needs[4] && sumTo(o, matmulGradA(o, g, lowB, false, transposeB, lowAlpha), shapeOf(c, 4)),
        c.needs[5] &&
          sumTo(o, matmulGradB(o, g, lowA, false, transposeB, shapeOf(c, 5), lowAlpha), shapeOf(c, 5)),
      ];
    },
    { save: (args) => [args[0], args[1], ...lowRankOf(args)] },
  ),
  // x W^T + bias + s (x D^T) U^T (+ residual; LoRA): forward keeps h = x D^T; backward's dx = g W + dh D is one
  // product (the low-rank term in its epilogue), with an earlier sum for x absorbed as its residual.
  lowRankLinear: rule(
    (args) => {
      const options = args[4] as LowRankLinearOptions<T> | undefined;
      return [args[0], args[1], args[2], args[3], options?.bias ?? null, options?.residual ?? null];
    },
    (o, [x, weight, down, up, options]) => {
      const {
        bias = null,
        residual = null,
        scaling = 1,
      } = (options as LowRankLinearOptions<T> | undefined) ?? {};
      const hidden = o.matmul(x as T, down as T, { transposeB: true });
      const output = o.matmul(x as T, weight as T, {
        transposeB: true,
        bias,
        residual,
        lowRank: { a: hidden, b: up as T, alpha: scaling },
      });
      return { output, hidden } satisfies LowRankLinearResult<T>;
    },
    (o, g, [x, weight, down, up, hidden], c) => {
      const scaling = (c.args[4] as LowRankLinearOptions<T> | undefined)?.scaling ?? 1;
      const dh = c.needs[0] || c.needs[2] ? o.matmul(g, up, factor(scaling)) : null;
      return [
        c.needs[0] &&
          inputGradient(
            o,
            g,
            weight,
            c,
            { transposeA: false, transposeB: true, alpha: 1 },
            dh ?? undefined,
            down,
          ),
        c.needs[1] && matmulGradB(o, g, x, false, true, shapeOf(c, 1), 1),
        c.needs[2] && matmulGradB(o, dh as T, x, false, true, shapeOf(c, 2), 1),
        c.needs[3] && matmulGradB(o, g, hidden, false, true, shapeOf(c, 3), scaling),
        c.needs[4] && sumTo(o, g, shapeOf(c, 4)),
        c.needs[5] && g,
      ];
    },
    {
      output: (result) => (result as LowRankLinearResult<T>).output,
      save: (args, result) => [args[0], args[1], args[2], args[3], (result as LowRankLinearResult<T>).hidden],
    },
  ),
} satisfies Record<string, Rule>;

/** A matmul's low-rank operands, where it has them (saved for its gradients). */
function lowRankOf(args: Args): T[] {
  const low = (args[2] as MatmulOptions<T> | undefined)?.lowRank;
  return low ? [low.a, low.b] : [];
}

/**
 * dA of alpha op(A) op(B) (+ low.a low.b, the low-rank input gradient dh D of lowRankLinear). An
 * input that other ops also read (a layer's input feeds q, k, v and LoRA's A) has the sum so far
 * added in the product's epilogue instead of by a separate add.
 */
function inputGradient(
  o: Ops,
  g: T,
  b: T,
  c: BackwardContext,
  { transposeA, transposeB, alpha }: { transposeA: boolean; transposeB: boolean; alpha: number },
  lowA?: T,
  lowB?: T,
): T {
  const aShape = shapeOf(c, 0);
  const bShape = o.shape(b);
  const unbroadcast =
    !transposeA &&
    aShape.length >= 2 &&
    (bShape.length === 2 || sameShape(aShape.slice(0, -2), bShape.slice(0, -2)));
  const dtype = o.dtype(g);
  const earlier = unbroadcast
    ? (c.absorb?.(0, (x) => sameShape(o.shape(x), aShape) && o.dtype(x) === dtype) ?? null)
    : null;
  const lowRank = lowA && lowB ? { lowRank: { a: lowA, b: lowB } } : {};
  if (earlier || lowA) {
    return o.matmul(g, b, { transposeB: !transposeB, residual: earlier, ...factor(alpha), ...lowRank });
  }
  return sumTo(o, matmulGradA(o, g, b, transposeA, transposeB, alpha), aShape);
}

/** The factor as a matmul option (none when it is 1, so unscaled products keep their kernels). */
const factor = (alpha: number) => (alpha === 1 ? {} : { alpha });

/** dA of alpha op(A) op(B) = C: alpha g op(B)^T, transposed back when A was. */
function matmulGradA(o: Ops, g: T, b: T, transposeA: boolean, transposeB: boolean, alpha: number): T {
  return transposeA
    ? o.matmul(b, g, { transposeA: transposeB, transposeB: true, ...factor(alpha) })
    : o.matmul(g, b, { transposeB: !transposeB, ...factor(alpha) });
}

/**
 * dB of op(A) op(B) = C: op(A)^T g. When B is a matrix shared by a batch of A (a weight), the
 * batch is folded into the rows so the sum over the batch happens inside one matmul. That is a
 * 2-D product, which matmul also runs for a weight split in chunks (a tied embedding larger than
 * one binding): g^T a is summed over blocks of tokens into a gradient whose rows follow the
 * weight's chunks, and dA = g B over blocks of the weight's rows.
 */
function matmulGradB(
  o: Ops,
  g: T,
  a: T,
  transposeA: boolean,
  transposeB: boolean,
  bShape: Shape,
  alpha: number,
): T {
  const aShape = o.shape(a);
  if (bShape.length === 2 && aShape.length > 2 && !transposeA) {
    const rows = (t: T) => o.reshape(t, [-1, o.shape(t)[o.shape(t).length - 1]]);
    return transposeB
      ? o.matmul(rows(g), rows(a), { transposeA: true, ...factor(alpha) })
      : o.matmul(rows(a), rows(g), { transposeA: true, ...factor(alpha) });
  }
  return transposeB
    ? o.matmul(g, a, { transposeA: true, transposeB: transposeA, ...factor(alpha) })
    : o.matmul(a, g, { transposeA: !transposeA, ...factor(alpha) });
}
