// Public API of @webtune/tensors. Listed deliberately: what is not here is internal.

// Option and result types of the differentiable ops (generic over the tensor type of a backend).
export type {
  AttentionOptions as AutogradAttentionOptions,
  CrossEntropyOptions as AutogradCrossEntropyOptions,
  CrossEntropyResult as AutogradCrossEntropyResult,
  DropoutOptions as AutogradDropoutOptions,
  LowRankLinearOptions as AutogradLowRankLinearOptions,
  LowRankLinearResult as AutogradLowRankLinearResult,
  MatmulOptions as AutogradMatmulOptions,
  RotaryOptions as AutogradRotaryOptions,
  UnaryFunction as AutogradUnaryFunction,
  UnaryOp as AutogradUnaryOp,
} from './autograd/backend.js';
// Autograd: reverse-mode differentiation over the ops, backward kernels (src/autograd, kernels/*-backward, swiglu)
export {
  type AutogradBackend,
  autograd,
  type BackwardOptions,
  backward,
  checkpoint,
  checkpointWith,
  clearTape,
  type DifferentiableFunctions,
  differentiable,
  enableGrad,
  GPU_BACKEND,
  gradOf,
  HALF_SAVED_POLICY,
  type HalfSavedPolicy,
  isGradEnabled,
  isTracked,
  noGrad,
  requiresGrad,
  rowGradient,
  rowGradientWith,
  type SavedTensorContext,
  tapeSize,
  withHalfSavedTensors,
  zeroGrad,
} from './autograd/index.js';
export { type AdapterClass, classifyAdapter, type Tuning, tuningFor } from './device/adapter-class.js';
// Device
export { sizeClass } from './device/buffer-pool.js';
export { type CreateDeviceOptions, createDevice } from './device/create-device.js';
export {
  type DawnPolling,
  dawnPollingStats,
  expectDawnWait,
  installDawnPolling,
} from './device/dawn-polling.js';
export { DEFAULT_DAWN_TOGGLES, withDefaultDawnToggles } from './device/dawn-toggles.js';
export {
  type Bindable,
  type Device,
  type DeviceInfo,
  type DeviceStats,
  formatBytes,
  grid,
  type KernelLaunch,
  type MemoryStats,
} from './device/device.js';
export {
  LIMIT_NAMES,
  type LimitName,
  type LimitsRequest,
  requestedLimits,
  WEBGPU_DEFAULT_LIMITS,
} from './device/device-limits.js';
export {
  DeviceLimitsError,
  DeviceLostError,
  GpuError,
  NoAdapterError,
  TensorError,
} from './device/errors.js';
export {
  formatKernelProfile,
  type KernelProfile,
  type KernelSpan,
  type KernelTime,
} from './device/kernel-profiler.js';
export {
  AGE_POLL_SCHEDULE,
  DEFAULT_POLL_SCHEDULE,
  type PollSchedule,
  pollSleepMs,
  pollStartMs,
  WaitHistory,
} from './device/poll-schedule.js';
export type { UniformField, UniformType, UniformValue } from './device/uniforms.js';
// Row-wise kernels: reductions, softmax, norms, cross-entropy, AdamW, global norm
export { type AdamWOptions, adamwStep } from './kernels/adamw/adamw.js';
export { type AdamWStepsOptions, type AdamWUpdate, adamwSteps } from './kernels/adamw/adamw-multi.js';
// Transformer kernels: rotary, embedding, scatter-add, attention
export { type AttentionOptions, type AttentionResult, attention } from './kernels/attention/attention.js';
export {
  type AttentionBackwardOptions,
  attentionBackward,
} from './kernels/attention/attention-backward.js';
export { type PromptAttentionOptions, promptAttention } from './kernels/attention/prompt-attention.js';
// Elementwise
export { type BinaryOp, binary } from './kernels/binary/binary.js';
// Unary, where, cast, layout and random (kernels/unary, where, cast, copy, random)
export { cast } from './kernels/cast/cast.js';
export { type CopyRegion, stridedCopy } from './kernels/copy/copy.js';
export type { CrossEntropyBackwardOptions } from './kernels/cross-entropy/backward-reference.js';
export {
  type CrossEntropyOptions,
  type CrossEntropyResult,
  crossEntropy,
  type LossReduction,
} from './kernels/cross-entropy/cross-entropy.js';
export { crossEntropyBackward } from './kernels/cross-entropy/cross-entropy-backward.js';
export { type DecodeAttentionOptions, decodeAttention } from './kernels/decode/decode-attention.js';
export {
  type DecodeHeadOptions,
  decodeHead,
  STREAMING_HEAD_MAX_K,
  STREAMING_HEAD_MAX_ROWS,
  streamingHeadUnsupported,
} from './kernels/decode/decode-head.js';
export {
  DECODE_LAYER_HEAD_BUFFERS,
  DECODE_LAYER_MAX_WEIGHTS,
  type DecodeLayerLayout,
  type DecodeLayerOptions,
  type DecodeLayerShape,
  decodeLayer,
  decodeLayerLayout,
  decodeLayerUnsupported,
} from './kernels/decode/decode-layer.js';
export {
  type DecodeEpilogue,
  type DecodeMatvecOptions,
  decodeMatvec,
} from './kernels/decode/decode-matvec.js';
export { decodeNormAdd } from './kernels/decode/decode-norm-add.js';
export { type DecodeSampleOptions, decodeSample } from './kernels/decode/decode-sample.js';
export { decodeArgmax, decodeEmbed, decodeSoftcap } from './kernels/decode/decode-tokens.js';
export {
  type PrefillAppendOptions,
  type PrefillAttentionOptions,
  prefillAppend,
  prefillAttention,
} from './kernels/decode/prefill-attention.js';
export { prefillProduct } from './kernels/decode/prefill-product.js';
export { embedding } from './kernels/embedding/embedding.js';
export { clipByGlobalNorm, globalNorm } from './kernels/global-norm/global-norm.js';
// Kernel selection by capability (features, limits, adapter class), and which variant ran
export { countKernelVariants, kernelVariant } from './kernels/kernel-variant.js';
export { type LayerNormOptions, type LayerNormResult, layerNorm } from './kernels/layer-norm/layer-norm.js';
// Matmul
export type { LowRankTerm } from './kernels/matmul/low-rank.js';
export { type MatmulOptions, matmul } from './kernels/matmul/matmul.js';
export { OUTER_OPERAND_MAX_BYTES } from './kernels/matmul/operand-plan.js';
export {
  type CandidateMatmul,
  type SelfCheckProduct,
  selfCheckMatmul,
  selfCheckProducts,
} from './kernels/matmul-tiled/matmul-self-check.js';
export {
  type MatmulCapabilities,
  type MatmulProblemSummary,
  type MatmulSelection,
  type MatmulVariant,
  matmulCapabilities,
  SUBGROUP_MATRIX_FEATURE,
  type SubgroupMatrixCapabilities,
  selectMatmulVariant,
  subgroupMatrixChoice,
} from './kernels/matmul-tiled/select-variant.js';
export { tiledProduct, verifySubgroupMatrix } from './kernels/matmul-tiled/subgroup-matrix-check.js';
export {
  chooseSubgroupMatrixConfig,
  parseSubgroupMatrixConfigs,
  type SubgroupMatrixConfig,
} from './kernels/matmul-tiled/subgroup-matrix-config.js';
export {
  type SubgroupMatrixCheck,
  subgroupMatrixCheckOf,
} from './kernels/matmul-tiled/subgroup-matrix-state.js';
// Kernel authoring
export { KERNELS, type KernelName } from './kernels/names.js';
// Frozen weights in half precision or ggml blocks (Q8_0, Q4_0, Q4_K), decoded inside the matmul kernels
export {
  BLOCK as PACKED_BLOCK,
  bf16BitsToF32,
  bitsPerWeight,
  blockValues,
  decodeRows,
  encodeRows,
  f32ToBf16Bits,
  fitsFormat,
  isQuantized,
  PACKED_FORMATS,
  type PackedFormat,
  packedRowBytes,
  q4kScaleAndMin,
} from './kernels/packed-matmul/formats.js';
export {
  type PackedDecoderOptions,
  packedDecoderWgsl,
} from './kernels/packed-matmul/packed-decoders-wgsl.js';
export { packedGather } from './kernels/packed-matmul/packed-gather.js';
export {
  packedLinear,
  packedMatmul,
  packedMatmulInputGrad,
  packedRowvecShape,
  packedTileShape,
  unpackWeight,
} from './kernels/packed-matmul/packed-matmul.js';
export { type PackedRowvecShape, packedRowvecSource } from './kernels/packed-matmul/packed-rowvec.js';
export { type PackedTileShape, packedTileKey } from './kernels/packed-matmul/packed-tiled-wgsl.js';
export {
  type PackedChunk,
  PackedWeight,
  packedWeightFromBytes,
  packWeight,
} from './kernels/packed-matmul/packed-weight.js';
export {
  type DropoutOptions,
  dropout,
  dropoutMask,
  type NormalOptions,
  type RandomOptions,
  randomBits,
  randomNormal,
  randomUniform,
  type UniformOptions,
} from './kernels/random/random.js';
export {
  argmax,
  max,
  mean,
  type ReduceOp,
  type ReduceOptions,
  reduce,
  sum,
} from './kernels/reduce/reduce.js';
export { type RmsNormOptions, type RmsNormResult, rmsNorm } from './kernels/rms-norm/rms-norm.js';
export { rmsNormBackward } from './kernels/rms-norm/rms-norm-backward.js';
export { type RotaryOptions, type RotaryStyle, rotary } from './kernels/rotary/rotary.js';
export {
  type RopeScaling,
  type RotaryFrequencies,
  type RotaryTablesOptions,
  rotaryFrequencies,
  rotaryTables,
  rotaryTableValues,
} from './kernels/rotary/rotary-tables.js';
export { scatterAdd } from './kernels/scatter-add/scatter-add.js';
export {
  type KernelSourceSpec,
  kernelSource,
  type StorageBinding,
  workgroupsFor,
} from './kernels/shared/wgsl.js';
export { logSoftmax, type SoftmaxKind, softmax } from './kernels/softmax/softmax.js';
export { swiglu, swigluBackward } from './kernels/swiglu/swiglu.js';
export { UNARY_OPS, type UnaryOp, unary } from './kernels/unary/unary.js';
export { unaryBackward } from './kernels/unary/unary-backward.js';
export { where } from './kernels/where/where.js';
// Creation
export { arange, fromArray, full, ones, rand, randn, zeros } from './ops/creation.js';
export {
  abs,
  add,
  cos,
  div,
  eq,
  erf,
  exp,
  ge,
  gelu,
  gt,
  le,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  reciprocal,
  relu,
  rsqrt,
  scale,
  sigmoid,
  silu,
  sin,
  sqrt,
  square,
  sub,
  tanh,
} from './ops/elementwise.js';
export { concat, contiguousCopy, permute, slice, transpose } from './ops/layout.js';
export {
  DTYPE_BYTES,
  type DType,
  f16BitsToF32,
  f32ToF16Bits,
  type HostArray,
  isFloat,
} from './tensor/dtype.js';
export { broadcastShapes, type Shape, sizeOf } from './tensor/shape.js';
// Tensors
export { type BufferRange, Tensor } from './tensor/tensor.js';
