import { GgufError } from './errors.js';

/**
 * ggml tensor types by their numeric id in a GGUF file (ggml.h's `enum ggml_type`). Only the
 * ones this package reads or writes have a layout below; the rest are named for error messages.
 */
export const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

/** The tensor types this package reads (and dequantizes to float32). */
export const GGML_TYPES = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  BF16: 30,
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPES;

/** Elements per block and bytes per block of each supported type (ggml-common.h's block structs). */
export const GGML_BLOCK_LAYOUT: Readonly<Record<GgmlTypeName, { blockSize: number; blockBytes: number }>> = {
  F32: { blockSize: 1, blockBytes: 4 },
  F16: { blockSize: 1, blockBytes: 2 },
  BF16: { blockSize: 1, blockBytes: 2 },
  // d (f16) + 16 bytes of 4-bit values
  Q4_0: { blockSize: 32, blockBytes: 18 },
  // d, m (f16) + 16 bytes of 4-bit values
  Q4_1: { blockSize: 32, blockBytes: 20 },
  // d (f16) + 4 bytes of fifth bits + 16 bytes of low nibbles
  Q5_0: { blockSize: 32, blockBytes: 22 },
  // d, m (f16) + 4 bytes of fifth bits + 16 bytes of low nibbles
  Q5_1: { blockSize: 32, blockBytes: 24 },
  // d (f16) + 32 int8
  Q8_0: { blockSize: 32, blockBytes: 34 },
  // d, dmin (f16) + 12 bytes of 6-bit scales and mins + 128 bytes of nibbles
  Q4_K: { blockSize: 256, blockBytes: 144 },
  // d, dmin + 12 scale bytes + 32 bytes of fifth bits + 128 bytes of nibbles
  Q5_K: { blockSize: 256, blockBytes: 176 },
  // 128 bytes of low nibbles + 64 bytes of high 2-bit pairs + 16 int8 scales + d (f16)
  Q6_K: { blockSize: 256, blockBytes: 210 },
};

/** The name of type id `type` ("type 99" when ggml has none). */
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? `type ${type}`;
}

/** The supported type name of id `type`, or undefined. */
export function supportedTypeName(type: number): GgmlTypeName | undefined {
  for (const [name, id] of Object.entries(GGML_TYPES)) if (id === type) return name as GgmlTypeName;
  return undefined;
}

/**
 * Bytes of a tensor of `elements` elements whose innermost dimension is `rowLength`, or a
 * GgufError when the row is not a whole number of blocks.
 */
export function ggmlTensorBytes(
  type: GgmlTypeName,
  rowLength: number,
  elements: number,
  tensorName?: string,
): number {
  const { blockSize, blockBytes } = GGML_BLOCK_LAYOUT[type];
  if (rowLength % blockSize !== 0) {
    throw new GgufError(
      `${type} packs rows in blocks of ${blockSize}, but the innermost dimension is ${rowLength}`,
      { tensorName },
    );
  }
  return (elements / blockSize) * blockBytes;
}
