// Plain TypeScript references of the kernels (float64), for tests and for users who check numbers.

// Autograd: the float64 reference autodiff (the same gradient rules on the CPU) and backward references
export { REFERENCE_BACKEND, ReferenceTensor } from './autograd/reference-backend.js';
// Row-wise kernels: reductions, softmax, norms, cross-entropy, AdamW, global norm
export { adamwReference } from './kernels/adamw/reference.js';
export { attentionBackwardReference } from './kernels/attention/backward-reference.js';
// Transformer kernels: rotary, embedding, scatter-add, attention
export {
  type AttentionDims,
  type AttentionReferenceOptions,
  attentionReference,
  attentionRowReference,
} from './kernels/attention/reference.js';
export { BINARY_REFERENCE, binaryReference } from './kernels/binary/reference.js';
// Unary, where, cast, layout and random
export { castReference, castValue } from './kernels/cast/reference.js';
export {
  concatReference,
  type HostTensor,
  permuteReference,
  sliceReference,
} from './kernels/copy/reference.js';
export { crossEntropyBackwardReference } from './kernels/cross-entropy/backward-reference.js';
export { crossEntropyReference } from './kernels/cross-entropy/reference.js';
export { embeddingReference } from './kernels/embedding/reference.js';
export { clipByGlobalNormReference, globalNormReference } from './kernels/global-norm/reference.js';
export { layerNormReference } from './kernels/layer-norm/reference.js';
// Matmul
export { type MatmulReferenceOptions, matmulReference } from './kernels/matmul/reference.js';
export { generatorKeys, mix32, randomBits as randomBitsOf } from './kernels/random/generator.js';
export {
  dropoutReference,
  normalReference,
  randomBitsReference,
  uniformReference,
} from './kernels/random/reference.js';
export { axisViewReference, reduceReference } from './kernels/reduce/reference.js';
export { rmsNormBackwardReference } from './kernels/rms-norm/backward-reference.js';
export { rmsNormReference } from './kernels/rms-norm/reference.js';
export { rotaryReference } from './kernels/rotary/reference.js';
export { scatterAddReference } from './kernels/scatter-add/reference.js';
export { logSoftmaxReference, softmaxReference } from './kernels/softmax/reference.js';
export { swigluBackwardReference, swigluReference } from './kernels/swiglu/reference.js';
export { UNARY_DERIVATIVE, unaryBackwardReference } from './kernels/unary/backward-reference.js';
export {
  erf as erfReference,
  erfc as erfcReference,
  erfcx as erfcxReference,
  UNARY_REFERENCE,
  unaryReference,
} from './kernels/unary/reference.js';
export type { UnaryOp } from './kernels/unary/unary.js';
export { type WhereOperand, whereReference } from './kernels/where/reference.js';
export { roundToF16 } from './tensor/dtype.js';
