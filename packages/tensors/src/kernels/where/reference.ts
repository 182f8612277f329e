import {
  broadcastShapes,
  broadcastStrides,
  contiguousStrides,
  type Shape,
  sizeOf,
} from '../../tensor/shape.js';

/** An operand of whereReference: values with their shape, or a plain number. */
export type WhereOperand = { data: ArrayLike<number>; shape: Shape } | number;

/** Plain TypeScript `condition ? a : b` with broadcasting; nonzero (and NaN) conditions are true. */
export function whereReference(
  condition: { data: ArrayLike<number>; shape: Shape },
  a: WhereOperand,
  b: WhereOperand,
): { data: Float64Array; shape: number[] } {
  const shapeOf = (operand: WhereOperand) => (typeof operand === 'number' ? [] : operand.shape);
  const shape = broadcastShapes(broadcastShapes(condition.shape, shapeOf(a)), shapeOf(b));
  const strides = contiguousStrides(shape);
  const reader = (operand: WhereOperand) => {
    if (typeof operand === 'number') return () => operand;
    const own = broadcastStrides(operand.shape, shape);
    return (coordinates: number[]) => {
      let at = 0;
      for (let d = 0; d < shape.length; d++) at += coordinates[d] * own[d];
      return operand.data[at];
    };
  };
  const readCondition = reader(condition);
  const readA = reader(a);
  const readB = reader(b);
  const out = new Float64Array(sizeOf(shape));
  const coordinates = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    for (let d = 0; d < shape.length; d++) coordinates[d] = Math.floor(i / strides[d]) % shape[d];
    out[i] = readCondition(coordinates) !== 0 ? readA(coordinates) : readB(coordinates);
  }
  return { data: out, shape };
}
