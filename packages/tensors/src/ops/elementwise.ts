import { type BinaryOp, binary } from '../kernels/binary/binary.js';
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
