import { type Shape, sameShape } from '../tensor/shape.js';
import {
  type ArithmeticOp,
  type AttentionOptions,
  type CrossEntropyOptions,
  type CrossEntropyResult,
  type DropoutOptions,
  type RotaryOptions,
  UNARY_FUNCTIONS,
  type UnaryFunction,
} from './backend.js';
import type { BackwardContext, Rule } from './engine.js';

import { LINEAR_RULES } from './linear-rules.js';
import {
  type Args,
  first,
  firstTwo,
  isTensor,
  type Ops,
  rule,
  shapeOf,
  sumTo,
  type T,
} from './rule-builder.js';

/*
 * Every gradient rule of @webtune/tensors, in one table. A rule names the differentiable
 * arguments, runs the forward (saying what backward needs) and returns the vector-Jacobian
 * product: the gradient of each input given the gradient `g` of the output. Rules are written
 * against AutogradBackend, so the float64 CPU reference (checked against finite differences)
 * and the GPU run the same lines. Composite functions (linear layers, Llama blocks) need no
 * rule: they are compositions of these ops. The products' rules (matmul, lowRankLinear) are in
 * linear-rules.ts, the builder they share in rule-builder.ts.
 */

const mask = (o: Ops, condition: T, dtype: T) => o.cast(condition, o.dtype(dtype));
const normalize = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** maximum/minimum: the gradient goes to the larger (smaller) operand, split in half on ties. */
function extremum(op: 'gt' | 'lt') {
  return rule(
    firstTwo,
    (o, [a, b]) => o.binary(op === 'gt' ? 'maximum' : 'minimum', a as T, b as T | number),
    (o, g, [a, b], c) => {
      const bOperand = isTensor(b) ? b : (c.args[1] as number);
      const weightA = o.binary(
        'add',
        mask(o, o.binary(op, a, bOperand), g),
        o.scale(mask(o, o.binary('eq', a, bOperand), g), 0.5),
      );
      return [
        c.needs[0] && sumTo(o, o.binary('mul', g, weightA), shapeOf(c, 0)),
        c.needs[1] && sumTo(o, o.binary('sub', g, o.binary('mul', g, weightA)), shapeOf(c, 1)),
      ];
    },
    { save: (args) => (isTensor(args[1]) ? [args[0], args[1]] : [args[0]]) },
  );
}

const binaryForward =
  (op: ArithmeticOp) =>
  (o: Ops, [a, b]: Args) =>
    o.binary(op, a as T, b as T | number);

const ARITHMETIC: Record<ArithmeticOp, Rule> = {
  add: rule(firstTwo, binaryForward('add'), (o, g, _s, c) => [
    c.needs[0] && sumTo(o, g, shapeOf(c, 0)),
    c.needs[1] && sumTo(o, g, shapeOf(c, 1)),
  ]),
  sub: rule(firstTwo, binaryForward('sub'), (o, g, _s, c) => [
    c.needs[0] && sumTo(o, g, shapeOf(c, 0)),
    c.needs[1] && sumTo(o, o.unary('neg', g), shapeOf(c, 1)),
  ]),
  mul: rule(
    firstTwo,
    binaryForward('mul'),
    (o, g, [a, b], c) => [
      c.needs[0] && sumTo(o, o.binary('mul', g, b ?? (c.args[1] as number)), shapeOf(c, 0)),
      c.needs[1] && sumTo(o, o.binary('mul', g, a), shapeOf(c, 1)),
    ],
    { save: (args) => (isTensor(args[1]) ? [args[0], args[1]] : [args[0]]) },
  ),
  // d(a/b)/da = 1/b, d(a/b)/db = -(a/b)/b: needs b and the output only.
  div: rule(
    firstTwo,
    binaryForward('div'),
    (o, g, [out, b], c) => {
      const ga = o.binary('div', g, b ?? (c.args[1] as number));
      return [
        c.needs[0] && sumTo(o, ga, shapeOf(c, 0)),
        c.needs[1] && sumTo(o, o.unary('neg', o.binary('mul', ga, out)), shapeOf(c, 1)),
      ];
    },
    { save: (args, out) => (isTensor(args[1]) ? [out, args[1]] : [out]) },
  ),
  // d(a^b)/da = b a^(b-1), d(a^b)/db = a^b ln a.
  pow: rule(
    firstTwo,
    binaryForward('pow'),
    (o, g, [a, out, b], c) => {
      const exponent = b ?? (c.args[1] as number);
      const lower = isTensor(exponent) ? o.binary('sub', exponent, 1) : exponent - 1;
      return [
        c.needs[0] &&
          sumTo(o, o.binary('mul', o.binary('mul', g, exponent), o.binary('pow', a, lower)), shapeOf(c, 0)),
        c.needs[1] && sumTo(o, o.binary('mul', o.binary('mul', g, out), o.unary('log', a)), shapeOf(c, 1)),
      ];
    },
    { save: (args, out) => (isTensor(args[1]) ? [args[0], out, args[1]] : [args[0], out]) },
  ),
  maximum: extremum('gt'),
  minimum: extremum('lt'),
};

/** Every unary op: the fused derivative kernel (kernels/unary-backward) from x and op(x). */
const UNARY = Object.fromEntries(
  Object.entries(UNARY_FUNCTIONS).map(([name, op]) => [
    name,
    rule(
      first,
      (o, [x]) => o.unary(op, x as T),
      (o, g, [x, out]) => [o.unaryBackward(op, x, out, g)],
      { save: (args, out) => [args[0], out] },
    ),
  ]),
) as Record<UnaryFunction, Rule>;

const axisArgument = (c: BackwardContext, rank: number, at = 1) =>
  normalize((c.args[at] as number | undefined) ?? -1, rank);

/** The reduced axis of sum/mean/max; null: all elements. */
const reducedAxis = (c: BackwardContext, rank: number) =>
  c.args[1] === null || c.args[1] === undefined ? null : normalize(c.args[1] as number, rank);

/** Re-inserts the reduced axis (a size-1 dimension, every axis when null) the forward dropped. */
function keepAxis(o: Ops, g: T, shape: Shape, axis: number | null): T {
  return o.reshape(
    g,
    shape.map((d, i) => (axis === null || i === axis ? 1 : d)),
  );
}

const keepDims = (options: unknown) => Boolean((options as { keepDims?: boolean } | undefined)?.keepDims);

const REST = {
  scale: rule(
    first,
    (o, [x, factor]) => o.scale(x as T, factor as number),
    (o, g, _s, c) => [o.scale(g, c.args[1] as number)],
  ),
  where: rule(
    (args) => [args[1], args[2]],
    (o, [condition, a, b]) => o.where(condition as T, a as T, b as T),
    (o, g, [condition], c) => [
      c.needs[0] && sumTo(o, o.where(condition, g, 0), shapeOf(c, 0)),
      c.needs[1] && sumTo(o, o.where(condition, 0, g), shapeOf(c, 1)),
    ],
    { save: (args) => [args[0]] },
  ),
  cast: rule(
    first,
    (o, [x, dtype]) => o.cast(x as T, dtype as never),
    // Only the input's dtype is needed: the input itself is not kept (an f16 copy of a layer's
    // input would otherwise keep the f32 original alive).
    (o, g, _s, c) => [o.cast(g, c.dtypes[0] as never)],
  ),
  reshape: rule(
    first,
    (o, [x, shape]) => o.reshape(x as T, shape as Shape),
    (o, g, _s, c) => [o.reshape(g, shapeOf(c, 0))],
  ),
  transpose: rule(
    first,
    (o, [x, dim0, dim1]) => o.transpose(x as T, dim0 as number | undefined, dim1 as number | undefined),
    (o, g, _s, c) => [o.transpose(g, c.args[1] as number | undefined, c.args[2] as number | undefined)],
  ),
  permute: rule(
    first,
    (o, [x, order]) => o.permute(x as T, order as number[]),
    (o, g, _s, c) => {
      const given = c.args[1] as number[];
      const order = given.map((d) => normalize(d, given.length));
      const inverse = order.map((_, i) => order.indexOf(i));
      return [o.permute(g, inverse)];
    },
  ),
  // The gradient of a slice is the gradient padded with zeros, one sliced axis at a time.
  slice: rule(
    first,
    (o, [x, starts, ends]) => o.slice(x as T, starts as number[], ends as number[]),
    (o, g, _s, c) => {
      const shape = shapeOf(c, 0);
      let out = g;
      shape.forEach((extent, axis) => {
        const start = clampIndex((c.args[1] as number[])[axis] ?? 0, extent);
        const end = Math.max(start, clampIndex((c.args[2] as number[])[axis] ?? extent, extent));
        if (start === 0 && end === extent) return;
        const current = o.shape(out);
        const parts: T[] = [];
        const zeros = (length: number) =>
          o.full(
            out,
            current.map((d, i) => (i === axis ? length : d)),
            0,
          );
        if (start > 0) parts.push(zeros(start));
        parts.push(out);
        if (end < extent) parts.push(zeros(extent - end));
        out = o.concat(parts, axis);
      });
      return [out];
    },
  ),
  concat: rule(
    (args) => args[0] as T[],
    (o, [tensors, axis]) => o.concat(tensors as T[], axis as number),
    (o, g, _s, c) => {
      const rank = o.shape(g).length;
      const axis = normalize(c.args[1] as number, rank);
      let offset = 0;
      return c.shapes.map((shape, i) => {
        const extent = (shape as Shape)[axis];
        const starts = new Array<number>(rank).fill(0);
        const ends = [...o.shape(g)];
        starts[axis] = offset;
        ends[axis] = offset + extent;
        offset += extent;
        return c.needs[i] && o.slice(g, starts, ends);
      });
    },
  ),
  contiguousCopy: rule(
    first,
    (o, [x]) => o.reshape(x as T, o.shape(x as T)),
    (_o, g) => [g],
  ),
  // Counter-based masks: the same seed and offset drop the same elements of the gradient.
  dropout: rule(
    first,
    (o, [x, p, options]) => o.dropout(x as T, p as number, options as DropoutOptions),
    (o, g, _s, c) => [
      o.dropout(g, c.args[1] as number, { ...(c.args[2] as DropoutOptions), returnMask: false }).output,
    ],
    { output: (result) => (result as { output: T }).output },
  ),
  sum: rule(
    first,
    (o, [x, axis, options]) => o.sum(x as T, (axis as number | null) ?? null, keepDims(options)),
    (o, g, _s, c) => {
      const shape = shapeOf(c, 0);
      return [o.expand(keepAxis(o, g, shape, reducedAxis(c, shape.length)), shape)];
    },
  ),
  mean: rule(
    first,
    (o, [x, axis, options]) => o.mean(x as T, (axis as number | null) ?? null, keepDims(options)),
    (o, g, _s, c) => {
      const shape = shapeOf(c, 0);
      const axis = reducedAxis(c, shape.length);
      const count = axis === null ? shape.reduce((p, d) => p * d, 1) : shape[axis];
      return [o.scale(o.expand(keepAxis(o, g, shape, axis), shape), 1 / count)];
    },
  ),
  // Ties share the gradient equally.
  max: rule(
    first,
    (o, [x, axis, options]) => o.max(x as T, (axis as number | null) ?? null, keepDims(options)),
    (o, g, [x, top], c) => {
      const shape = shapeOf(c, 0);
      const axis = reducedAxis(c, shape.length);
      const winners = mask(o, o.binary('eq', x, o.expand(keepAxis(o, top, shape, axis), shape)), g);
      const share = o.binary('div', keepAxis(o, g, shape, axis), o.sum(winners, axis, true));
      return [o.binary('mul', winners, o.expand(share, shape))];
    },
    { save: (args, top) => [args[0], top] },
  ),
  // y = softmax(x): dx = y (g - sum(g y)).
  softmax: rule(
    first,
    (o, [x, axis]) => o.softmax(x as T, (axis as number | undefined) ?? -1),
    (o, g, [y], c) => {
      const axis = axisArgument(c, o.shape(y).length);
      const dot = o.sum(o.binary('mul', g, y), axis, true);
      return [o.binary('mul', y, o.binary('sub', g, dot))];
    },
    { save: (_args, y) => [y] },
  ),
  // y = log softmax(x): dx = g - exp(y) sum(g).
  logSoftmax: rule(
    first,
    (o, [x, axis]) => o.logSoftmax(x as T, (axis as number | undefined) ?? -1),
    (o, g, [y], c) => {
      const axis = axisArgument(c, o.shape(y).length);
      return [o.binary('sub', g, o.binary('mul', o.unary('exp', y), o.sum(g, axis, true)))];
    },
    { save: (_args, y) => [y] },
  ),
  rmsNorm: rule(
    firstTwo,
    (o, [x, weight, eps]) => o.rmsNorm(x as T, (weight as T | null) ?? null, eps as number),
    (o, g, [x, weight], c) => {
      // dx takes the gradient already summed for x (the residual stream); dw only when needed.
      const xShape = shapeOf(c, 0);
      const earlier = c.needs[0]
        ? (c.absorb?.(0, (e) => sameShape(o.shape(e), xShape) && o.dtype(e) === o.dtype(x)) ?? null)
        : null;
      const grads = o.rmsNormBackward(x, weight ?? null, g, c.args[2] as number, {
        weightGradient: c.needs[1],
        add: earlier,
      });
      return [c.needs[0] && grads.input, c.needs[1] && grads.weight];
    },
    { save: (args) => (isTensor(args[1]) ? [args[0], args[1]] : [args[0]]) },
  ),
  // LayerNorm by composition: xhat = (x - mean) rstd, dx = rstd (gw - mean(gw) - xhat mean(gw xhat)).
  layerNorm: rule(
    (args) => [args[0], args[1], args[2]],
    (o, [x, weight, bias, eps]) =>
      o.layerNorm(x as T, (weight as T | null) ?? null, (bias as T | null) ?? null, eps as number),
    (o, g, [x, weight], c) => {
      const eps = c.args[3] as number;
      const centered = o.binary('sub', x, o.mean(x, -1, true));
      const variance = o.mean(o.unary('square', centered), -1, true);
      const rstd = o.unary('rsqrt', o.binary('add', variance, eps));
      const normalized = o.binary('mul', centered, rstd);
      const gw = weight ? o.binary('mul', g, weight) : g;
      const inner = o.binary(
        'add',
        o.mean(gw, -1, true),
        o.binary('mul', normalized, o.mean(o.binary('mul', gw, normalized), -1, true)),
      );
      return [
        c.needs[0] && o.binary('mul', rstd, o.binary('sub', gw, inner)),
        c.needs[1] && sumTo(o, o.binary('mul', g, normalized), shapeOf(c, 1)),
        c.needs[2] && sumTo(o, g, shapeOf(c, 2)),
      ];
    },
    { save: (args) => (isTensor(args[1]) ? [args[0], args[1]] : [args[0]]) },
  ),
  // A rotation's transpose is the rotation by the opposite angle: rotary with -sin (in the kernel).
  rotary: rule(
    first,
    (o, [x, cos, sin, options]) => o.rotary(x as T, cos as T, sin as T, options as RotaryOptions),
    (o, g, [cos, sin], c) => {
      const options = c.args[3] as RotaryOptions;
      return [o.rotary(g, cos, sin, { ...options, inverse: !options.inverse })];
    },
    { save: (args) => [args[1], args[2]] },
  ),
  embedding: rule(
    first,
    (o, [table, ids]) => o.embedding(table as T, ids as T),
    (o, g, [ids], c) => [o.embeddingBackward(shapeOf(c, 0), ids, g)],
    { save: (args) => [args[1]] },
  ),
  // Flash-attention backward: probabilities are recomputed from the saved logsumexp (never T x T).
  attention: rule(
    (args) => [args[0], args[1], args[2]],
    (o, [q, k, v, options]) => o.attention(q as T, k as T, v as T, (options as AttentionOptions<T>) ?? {}),
    (o, g, [q, k, v, output, logsumexp, paddingMask], c) => {
      const options = { ...(c.args[3] as AttentionOptions<T> | undefined), paddingMask: paddingMask ?? null };
      const grads = o.attentionBackward(q, k, v, output, logsumexp, g, options);
      return [c.needs[0] && grads.q, c.needs[1] && grads.k, c.needs[2] && grads.v];
    },
    {
      output: (result) => (result as { output: T }).output,
      save: (args, result) => {
        const { output, logsumexp } = result as { output: T; logsumexp: T };
        const paddingMask = (args[3] as AttentionOptions<T> | undefined)?.paddingMask;
        return [args[0], args[1], args[2], output, logsumexp, ...(paddingMask ? [paddingMask] : [])];
      },
    },
  ),
  // Fused with log-softmax: dlogits = (softmax - target distribution) g, zero on ignored rows.
  crossEntropy: rule(
    first,
    (o, [logits, targets, options]) =>
      o.crossEntropy(logits as T, targets as T, (options as CrossEntropyOptions | undefined) ?? {}),
    (o, g, [logits, targets, logSumExp, tokenCount], c) => [
      o.crossEntropyBackward(
        logits,
        targets,
        logSumExp,
        tokenCount,
        g,
        (c.args[2] as CrossEntropyOptions) ?? {},
      ),
    ],
    {
      output: (result) => (result as CrossEntropyResult<T>).loss,
      save: (args, result) => {
        const { logSumExp, tokenCount } = result as CrossEntropyResult<T>;
        return [args[0], args[1], logSumExp, tokenCount];
      },
    },
  ),
  // Fused silu(gate) * up.
  swiglu: rule(
    firstTwo,
    (o, [gate, up]) => o.swiglu(gate as T, up as T),
    (o, g, [gate, up], c) => {
      const grads = o.swigluBackward(gate, up, g);
      return [c.needs[0] && grads.gate, c.needs[1] && grads.up];
    },
    { save: (args) => [args[0], args[1]] },
  ),
} satisfies Record<string, Rule>;

function clampIndex(index: number, extent: number): number {
  const resolved = index < 0 ? index + extent : index;
  return Math.min(Math.max(resolved, 0), extent);
}

/** The table: op name -> gradient rule. */
export const RULES = { ...ARITHMETIC, ...UNARY, ...REST, ...LINEAR_RULES } as const satisfies Record<
  string,
  Rule
>;
export type DifferentiableOp = keyof typeof RULES;
