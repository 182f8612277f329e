/**
 * Kernel tuning per adapter class. Tile and workgroup sizes are parameters of the kernels and are
 * picked here, once, when the device is created. Figures that motivated the choices are in
 * docs/architecture/kernels.md.
 */
export type AdapterClass = 'software' | 'integrated' | 'discrete';

export interface Tuning {
  /** Invocations per workgroup for simple elementwise and copy kernels. */
  elementwiseWorkgroup: number;
  /**
   * Consecutive items (vec4s where the kernel vectorises) one elementwise invocation handles.
   * Fewer, fatter invocations pay on CPU rasterisers; GPUs want one per invocation (coalescing).
   */
  elementwisePerInvocation: number;
  /** Invocations per workgroup for row-wise kernels (reductions, softmax, norms); a power of two. */
  rowWorkgroup: number;
  /**
   * Row normalisations (rms-norm forward and backward) over rows of at most this many loads
   * (vec4s, or scalars for a hidden size that is not a multiple of 4) give each invocation a whole
   * row, rowWorkgroup rows per workgroup, instead of a workgroup per row reducing through
   * workgroup memory and barriers. 0 turns it off. On lavapipe a row per invocation took 0.3-0.5x
   * the CPU time at 2048 x 64, 1024 x 288 and 256 x 576, and no more at 1 x 2048.
   */
  rowPerInvocationLength: number;
  /**
   * Workgroups a reduction aims for when it has few, long rows: the reduced axis is split in
   * segments reduced in parallel, then the partial results are reduced again.
   */
  reduceSplitWorkgroups: number;
  /** Output rows x columns computed by one matmul invocation (register tile). */
  matmulTileRows: number;
  matmulTileCols: number;
  /** Invocations per matmul workgroup. */
  matmulWorkgroup: number;
  /**
   * Matmul shares A rows across a workgroup of one subgroup with subgroupBroadcast (each lane loads
   * distinct rows) instead of every lane loading them; used only where the device has the
   * `subgroups` feature and a subgroup holds the whole workgroup. Pays on lavapipe, where every
   * storage load costs a scalar load per lane.
   */
  matmulSubgroups: boolean;
  /**
   * Products with at most this many rows (decoding a token or a few) take the small-M matmul
   * kernel: a workgroup per block of output columns, its lanes splitting K (kernels/matmul/small-rows-wgsl.ts).
   * 0 turns it off.
   */
  matmulSmallRowsMax: number;
  /**
   * The matmul kernel this class prefers for products of more rows than matmulSmallRowsMax
   * (kernels/matmul-tiled/select-variant.ts): 'register' (register tiles, packed operands; best on
   * CPU rasterisers), 'workgroup' (64 x 64 tiles in workgroup memory, operands read in place) or
   * 'subgroup' (A rows shared with subgroupBroadcast). A kernel the adapter cannot run (features,
   * limits) gives way to the next. The GPU entries are the standard GPU design, not yet measured.
   */
  matmulKernel: 'register' | 'workgroup' | 'subgroup';
  /** Invocations per small-M workgroup (a power of two; they split K) and output columns per workgroup (a multiple of 4). */
  matmulSmallRowsLanes: number;
  matmulSmallRowsCols: number;
  /**
   * Read a^T [K, M] and b [K, N] (the backward of a linear layer) in place, a vec4 of four rows
   * at one k per load, instead of packing a copy first (kernels/matmul/operand-plan.ts readsOuter).
   */
  matmulOuterOperands: boolean;
  /**
   * An operand stored across K that is too large to read in place whole (over
   * OUTER_OPERAND_MAX_BYTES: dh = dlogits E of a 32k classifier reads E [vocab, hidden]) is read
   * in place in K segments of at most that size, each launch adding into the output, instead of
   * being copied into packed panels first. Needs matmulOuterOperands.
   */
  matmulOuterSegments: boolean;
  /** Query rows and key columns per attention tile. */
  attentionBlockQ: number;
  attentionBlockK: number;
  /**
   * Largest head dim for which attention unrolls its loops over the head dim (constant bounds, the
   * query and accumulator rows in registers); larger head dims loop at run time over private
   * memory. On lavapipe unrolling halves the time at d = 48, ties at 64, and at 128 doubles it and
   * takes ~20 s to compile; GPU compilers need the constant bounds to keep the rows in registers.
   */
  attentionUnrollHeadDim: number;
  /**
   * Attention backward shares the key/value (or query/gradient) row that all lanes of a workgroup
   * need with subgroupBroadcast (each lane loads a few vec4s of it) instead of every lane loading
   * the whole row; used only where the device has `subgroups` and a subgroup holds the workgroup.
   * 5x faster on lavapipe, where every storage load costs a scalar load per lane.
   */
  attentionSubgroups: boolean;
  /**
   * Attention forward kernel this class prefers: 'lanes' (one invocation per query row, the key
   * and value rows in private memory; best on CPU rasterisers) or 'workgroup' (a 16 x 16
   * workgroup per 16 queries, key and value tiles in workgroup memory,
   * kernels/attention-tiled/). 'workgroup' needs a head dim that is a multiple of 4 and the
   * workgroup memory of one tile; otherwise 'lanes' runs. The GPU entries are not yet measured.
   */
  attentionKernel: 'lanes' | 'workgroup';
  /**
   * Largest head dim for which the attention forward splits the keys over the lanes of a
   * one-subgroup workgroup, every lane keeping the online softmax of all the block's query rows
   * in registers (kernels/attention/key-lanes.ts). Needs `subgroups`; 0 turns it off. On lavapipe
   * at head dim 8 it took 0.7-0.9x the CPU time of the row-per-invocation kernel (tools/kernel-lab).
   */
  attentionKeyLanesHeadDim: number;
  /**
   * Keys per chunk of promptAttention's kernel (kernels/attention/prompt-attention.ts: a lane per
   * query row, the chunk's key and value rows loaded a row per lane and shared with
   * subgroupBroadcast, its loops written out in the source); a multiple of attentionBlockQ, 0
   * leaves a prompt's attention to attention(). On lavapipe at head dim 8 (one row per lane), chunks of 8 took about
   * 0.6x the key-lanes kernel's time, 16 about 0.7x and 32 about 1x (bench/prefill-attention.mjs).
   * The training step's row-lanes attention (row-lanes.ts, row-lanes-backward.ts) takes the same
   * chunk and head-dim limit (0 also turns it off); 8 beat 16 there too (bench/training-attention.mjs).
   */
  promptAttentionChunk: number;
  /**
   * Largest head dim promptAttention's chunked kernel takes. On lavapipe it lost to attention()'s
   * subgroup kernel at 48 (every q.k and p.v term of the chunk broadcast) and takes 10-50 s to
   * compile at 64-128.
   */
  promptAttentionHeadDim: number;
  /**
   * The prompt's products in prefill (kernels/decode/prefill-tile-choice.ts), tuned apart from the
   * training matmul. Candidate tile heights (rows per invocation), preferred first: a prompt of M
   * rows takes the first whose padded rows (M rounded up to the height) are within
   * prefillRowsSlack of the least padding any candidate gives, so a 128-row prompt does not run
   * 144 rows. With subgroup loads a height is rounded down to a multiple of the lanes.
   */
  prefillTileRows: readonly number[];
  /** Padded rows a candidate height may add beyond the least any candidate pads, as a fraction of M. */
  prefillRowsSlack: number;
  /** Output columns per invocation of the 'store' (q/k/v), 'residual' (o, down) and gated (gate/up pairs) products. */
  prefillStoreCols: number;
  prefillResidualCols: number;
  prefillGatedCols: number;
  /** Invocations per prefill product workgroup (along columns). */
  prefillWorkgroup: number;
  /** Rows shared with subgroupBroadcast (as matmulSubgroups; needs a subgroup holding the workgroup). */
  prefillSubgroups: boolean;
  /**
   * Neighbouring workgroups take the row tiles of one weight slice (row tiles along x, weight
   * blocks along y) instead of the weight blocks of one row tile, so a slice of the weight is still
   * in cache when the next row tile reads it.
   */
  prefillRowTilesInner: boolean;
  /** Dispatches recorded before the pending command buffer is submitted. */
  maxDispatchesPerSubmit: number;
  /**
   * LoRA layers run as one lowRankLinear op (the B A x term in the base product's epilogue, the
   * input gradient dy W + dh A in one product) instead of three products forward and five
   * backward. On every class; false restores the separate products (to compare them).
   */
  lowRankEpilogue: boolean;
  /**
   * Vocabulary rows per workgroup of decoding's streaming head (kernels/decode/decode-head.ts:
   * 8 lanes split K, each row read once, the argmax's candidates kept as it goes); 0 keeps
   * decode's matvec and the argmax over the logits. On lavapipe the 32000 x 288 head took 2.6-5 ms
   * against 7.9-8.4 ms for the matvec (1.6x less CPU time).
   */
  decodeHeadRows: number;
  /**
   * Weights (elements) up to which a decode layer runs as one workgroup in one dispatch
   * (decodeLayer) instead of five; DECODE_LAYER_MAX_WEIGHTS (2^17) on every class.
   */
  decodeLayerMaxWeights: number;
}

const TUNINGS: Record<AdapterClass, Tuning> = {
  // CPU rasterisers (lavapipe, SwiftShader): few, fat invocations; registers pay, shared memory does not.
  software: {
    elementwiseWorkgroup: 64,
    elementwisePerInvocation: 4,
    rowWorkgroup: 64,
    rowPerInvocationLength: 256,
    reduceSplitWorkgroups: 16,
    matmulTileRows: 24,
    matmulTileCols: 4,
    matmulWorkgroup: 8,
    matmulSubgroups: true,
    matmulKernel: 'register',
    // tools/kernel-lab/README.md: 1.6x the tiled kernel at 1 row, 1.3x at 2, even at 4, slower beyond.
    matmulSmallRowsMax: 2,
    matmulSmallRowsLanes: 4,
    matmulSmallRowsCols: 8,
    matmulOuterOperands: true,
    matmulOuterSegments: true,
    attentionBlockQ: 8,
    attentionBlockK: 32,
    attentionUnrollHeadDim: 48,
    attentionSubgroups: true,
    attentionKernel: 'lanes',
    attentionKeyLanesHeadDim: 8,
    promptAttentionChunk: 8,
    promptAttentionHeadDim: 8,
    // docs/architecture/decode-path.md: 32 x 4 (gated 32 x 2 pairs) beat the matmul's 24 x 4 at
    // every stories15M and Qwen3-0.6B product for 128 rows; 16 rows only for prompts a 32-row tile
    // would pad by over 15% more (a 16-row tile does 0.8-0.95 of a 32-row one's work per second).
    prefillTileRows: [32, 16],
    prefillRowsSlack: 0.15,
    prefillStoreCols: 4,
    prefillResidualCols: 4,
    prefillGatedCols: 2,
    prefillWorkgroup: 8,
    prefillSubgroups: true,
    prefillRowTilesInner: true,
    maxDispatchesPerSubmit: 256,
    lowRankEpilogue: true,
    decodeHeadRows: 128,
    decodeLayerMaxWeights: 1 << 17,
  },
  integrated: {
    elementwiseWorkgroup: 256,
    elementwisePerInvocation: 1,
    rowWorkgroup: 128,
    rowPerInvocationLength: 0,
    reduceSplitWorkgroups: 256,
    matmulTileRows: 4,
    matmulTileCols: 4,
    matmulWorkgroup: 64,
    matmulSubgroups: false,
    matmulKernel: 'workgroup',
    matmulSmallRowsMax: 8,
    matmulSmallRowsLanes: 32,
    matmulSmallRowsCols: 4,
    matmulOuterOperands: true,
    matmulOuterSegments: false,
    attentionBlockQ: 16,
    attentionBlockK: 32,
    attentionUnrollHeadDim: 256,
    attentionSubgroups: false,
    attentionKernel: 'workgroup',
    attentionKeyLanesHeadDim: 0,
    promptAttentionChunk: 0,
    promptAttentionHeadDim: 0,
    // The prefill products' tile on GPUs is the register matmul's (not measured on a GPU yet).
    prefillTileRows: [4],
    prefillRowsSlack: 0,
    prefillStoreCols: 4,
    prefillResidualCols: 4,
    prefillGatedCols: 2,
    prefillWorkgroup: 64,
    prefillSubgroups: false,
    prefillRowTilesInner: false,
    maxDispatchesPerSubmit: 128,
    lowRankEpilogue: true,
    decodeHeadRows: 0,
    decodeLayerMaxWeights: 1 << 17,
  },
  discrete: {
    elementwiseWorkgroup: 256,
    elementwisePerInvocation: 1,
    rowWorkgroup: 256,
    rowPerInvocationLength: 0,
    reduceSplitWorkgroups: 1024,
    matmulTileRows: 4,
    matmulTileCols: 4,
    matmulWorkgroup: 64,
    matmulSubgroups: false,
    matmulKernel: 'workgroup',
    matmulSmallRowsMax: 8,
    matmulSmallRowsLanes: 32,
    matmulSmallRowsCols: 4,
    matmulOuterOperands: true,
    matmulOuterSegments: false,
    attentionBlockQ: 16,
    attentionBlockK: 64,
    attentionUnrollHeadDim: 256,
    attentionSubgroups: false,
    attentionKernel: 'workgroup',
    attentionKeyLanesHeadDim: 0,
    promptAttentionChunk: 0,
    promptAttentionHeadDim: 0,
    // The prefill products' tile on GPUs is the register matmul's (not measured on a GPU yet).
    prefillTileRows: [4],
    prefillRowsSlack: 0,
    prefillStoreCols: 4,
    prefillResidualCols: 4,
    prefillGatedCols: 2,
    prefillWorkgroup: 64,
    prefillSubgroups: false,
    prefillRowTilesInner: false,
    maxDispatchesPerSubmit: 128,
    lowRankEpilogue: true,
    decodeHeadRows: 0,
    decodeLayerMaxWeights: 1 << 17,
  },
};

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|software|warp|basic render/i;

export function classifyAdapter(info: AdapterDescription): AdapterClass {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  if (info.isFallbackAdapter || SOFTWARE_NAMES.test(text)) return 'software';
  if (/intel|apple|qualcomm|arm|mali|adreno|powervr|imagination/i.test(text)) return 'integrated';
  return 'discrete';
}

export function tuningFor(adapterClass: AdapterClass, overrides: Partial<Tuning> = {}): Tuning {
  return { ...TUNINGS[adapterClass], ...overrides };
}
