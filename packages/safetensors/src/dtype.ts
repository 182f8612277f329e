/**
 * Element types a safetensors file can hold, with their sizes. The order of this list is the
 * order of the reference implementation's `Dtype` enum; writers sort tensors by it (largest
 * first) so that every tensor starts at an offset aligned to its element size.
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;

/** A safetensors element type name, as written in the header. */
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

const bitsPerElement: Record<SafetensorsDtype, number> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
};

const dtypeRank = new Map<string, number>(SAFETENSORS_DTYPES.map((dtype, index) => [dtype, index]));

/** Whether `value` names a dtype this package knows. */
export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && dtypeRank.has(value);
}

/** Bits one element of `dtype` takes (4 and 6 for the packed sub-byte float formats). */
export function dtypeBits(dtype: SafetensorsDtype): number {
  return bitsPerElement[dtype];
}

/** Position of `dtype` in the reference enum order (used to sort tensors when writing). */
export function dtypeRankOf(dtype: SafetensorsDtype): number {
  return dtypeRank.get(dtype)!;
}

/**
 * Number of elements of `shape` (1 for a scalar), or undefined when it is not a safe integer.
 */
export function elementCount(shape: readonly number[]): number | undefined {
  let count = 1;
  for (const dimension of shape) {
    count *= dimension;
    if (!Number.isSafeInteger(count)) return undefined;
  }
  return count;
}

/**
 * Bytes a tensor of `dtype` and `shape` takes, or undefined when the count overflows or the
 * packed sub-byte elements do not fill whole bytes.
 */
export function tensorByteLength(dtype: SafetensorsDtype, shape: readonly number[]): number | undefined {
  const count = elementCount(shape);
  if (count === undefined) return undefined;
  const bits = count * bitsPerElement[dtype];
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) return undefined;
  return bits / 8;
}
