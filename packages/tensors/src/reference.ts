// Plain TypeScript references of the kernels (float64), for tests and for users who check numbers.
export { BINARY_REFERENCE, binaryReference } from './kernels/binary/reference.js';
export { roundToF16 } from './tensor/dtype.js';
