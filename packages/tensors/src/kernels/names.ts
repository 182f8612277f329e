/**
 * Every kernel's name, in one place. Pipeline cache keys start with one of these; set
 * WEBTUNE_PRINT_WGSL=<name> (or *) to print the generated WGSL of a kernel when it is compiled.
 */
export const KERNELS = {
  fill: 'fill',
  copy: 'copy',
  unary: 'unary',
  binary: 'binary',
  where: 'where',
  cast: 'cast',
  random: 'random',
  dropout: 'dropout',
  reduce: 'reduce',
  softmax: 'softmax',
  rmsNorm: 'rms-norm',
  layerNorm: 'layer-norm',
  matmul: 'matmul',
  rotary: 'rotary',
  embedding: 'embedding',
  scatterAdd: 'scatter-add',
  attention: 'attention',
  crossEntropy: 'cross-entropy',
  adamw: 'adamw',
  globalNorm: 'global-norm',
  // Fused decode steps (kernels/decode): norm + products, attention over the KV cache, tokens
  decode: 'decode',
  // Frozen weights in half precision or ggml blocks (kernels/packed-matmul)
  packedMatmul: 'packed-matmul',
  packedMatmulInputGrad: 'packed-matmul-input-grad',
  packedUnpack: 'packed-unpack',
  packedGather: 'packed-gather',
  // Autograd backward kernels
  unaryBackward: 'unary-backward',
  swiglu: 'swiglu',
  rmsNormBackward: 'rms-norm-backward',
  crossEntropyBackward: 'cross-entropy-backward',
  attentionBackward: 'attention-backward',
} as const;

export type KernelName = (typeof KERNELS)[keyof typeof KERNELS];
