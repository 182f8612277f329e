/**
 * Kernel tuning per adapter class. Tile and workgroup sizes are parameters of the kernels and are
 * picked here, once, when the device is created. Figures that motivated the choices are in
 * docs/architecture/kernels.md.
 */
export type AdapterClass = 'software' | 'integrated' | 'discrete';

export interface Tuning {
  /** Invocations per workgroup for simple elementwise and copy kernels. */
  elementwiseWorkgroup: number;
  /** Invocations per workgroup for row-wise kernels (reductions, softmax, norms). */
  rowWorkgroup: number;
  /** Output rows x columns computed by one matmul invocation (register tile). */
  matmulTileRows: number;
  matmulTileCols: number;
  /** Invocations per matmul workgroup. */
  matmulWorkgroup: number;
  /** Query rows and key columns per attention tile. */
  attentionBlockQ: number;
  attentionBlockK: number;
  /** Dispatches recorded before the pending command buffer is submitted. */
  maxDispatchesPerSubmit: number;
}

const TUNINGS: Record<AdapterClass, Tuning> = {
  // CPU rasterisers (lavapipe, SwiftShader): few, fat invocations; registers pay, shared memory does not.
  software: {
    elementwiseWorkgroup: 64,
    rowWorkgroup: 64,
    matmulTileRows: 8,
    matmulTileCols: 8,
    matmulWorkgroup: 8,
    attentionBlockQ: 8,
    attentionBlockK: 32,
    maxDispatchesPerSubmit: 256,
  },
  integrated: {
    elementwiseWorkgroup: 256,
    rowWorkgroup: 128,
    matmulTileRows: 4,
    matmulTileCols: 4,
    matmulWorkgroup: 64,
    attentionBlockQ: 16,
    attentionBlockK: 32,
    maxDispatchesPerSubmit: 128,
  },
  discrete: {
    elementwiseWorkgroup: 256,
    rowWorkgroup: 256,
    matmulTileRows: 4,
    matmulTileCols: 4,
    matmulWorkgroup: 64,
    attentionBlockQ: 16,
    attentionBlockK: 64,
    maxDispatchesPerSubmit: 128,
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
