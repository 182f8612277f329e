import { type BinaryOp, binary } from '../kernels/binary/binary.js';
import { cast } from '../kernels/cast/cast.js';
import { type UnaryOp, unary } from '../kernels/unary/unary.js';
import { where } from '../kernels/where/where.js';
import type { Tensor } from '../tensor/tensor.js';

type Operand = Tensor | number;
const op = (name: BinaryOp) => (a: Tensor, b: Operand) => binary(name, a, b);

export const add = op('add');
export const sub = op('sub');
export const mul = op('mul');
export const div = op('div');
export const pow = op('pow');
export const maximum = op('maximum');
export const minimum = op('minimum');
export const eq = op('eq');
export const ne = op('ne');
export const lt = op('lt');
export const le = op('le');
export const gt = op('gt');
export const ge = op('ge');

// Unary, select and cast (kernels/unary, kernels/where, kernels/cast).

const unaryOp = (name: UnaryOp) => (x: Tensor) => unary(name, x);

/** -x (float and i32). */
export const neg = unaryOp('neg');
/** |x| (float, i32, u32). */
export const abs = unaryOp('abs');
export const exp = unaryOp('exp');
/** Natural logarithm. */
export const log = unaryOp('log');
export const sqrt = unaryOp('sqrt');
/** 1 / sqrt(x). */
export const rsqrt = unaryOp('rsqrt');
/** x * x (float, i32, u32). */
export const square = unaryOp('square');
/** 1 / x. */
export const reciprocal = unaryOp('reciprocal');
export const sin = unaryOp('sin');
export const cos = unaryOp('cos');
/** x * sigmoid(x). */
export const silu = unaryOp('silu');
/** The error function (accurate to ~2e-7 relative in f32). */
export const erf = unaryOp('erf');
/** max(x, 0) (float, i32, u32). */
export const relu = unaryOp('relu');
/** tanh, safe for any |x| (no NaN where a driver's builtin would overflow). */
export const tanh = unaryOp('tanh');
/** 1 / (1 + exp(-x)), stable for large |x|. */
export const sigmoid = unaryOp('sigmoid');

/**
 * GELU. 'tanh' (default): 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), GPT-2's form;
 * 'erf': the exact 0.5 x (1 + erf(x / sqrt 2)) (BERT, PyTorch's default).
 */
export function gelu(x: Tensor, form: 'tanh' | 'erf' = 'tanh'): Tensor {
  return unary(form === 'erf' ? 'gelu-erf' : 'gelu', x);
}

/** x * factor (float tensors; factor travels as a uniform). */
export function scale(x: Tensor, factor: number): Tensor {
  return unary('scale', x, factor);
}

export { cast, where };
