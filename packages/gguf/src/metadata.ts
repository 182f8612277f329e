/** GGUF metadata value types (gguf.h's `enum gguf_type`). */
export const GGUF_VALUE_TYPES = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPES;
export type GgufScalarTypeName = Exclude<GgufValueTypeName, 'ARRAY'>;

/** Bytes of one value of a fixed-size type (strings and arrays have none). */
export const GGUF_VALUE_BYTES: Readonly<Partial<Record<GgufScalarTypeName, number>>> = {
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  UINT32: 4,
  INT32: 4,
  FLOAT32: 4,
  BOOL: 1,
  UINT64: 8,
  INT64: 8,
  FLOAT64: 8,
};

/** A scalar value: 64-bit integers beyond 2^53 stay bigint, the rest are numbers. */
export type GgufScalar = number | bigint | boolean | string;

/**
 * One metadata value with its stored type, so that a file read and written again keeps its types.
 * Arrays of numbers are plain arrays (converted with `Float32Array.from` etc. where speed matters).
 */
export type GgufValue =
  | { type: GgufScalarTypeName; value: GgufScalar }
  | { type: 'ARRAY'; itemType: GgufScalarTypeName; value: GgufScalar[] };

/** Metadata in file order. */
export type GgufMetadata = Map<string, GgufValue>;

/** The name of value type id `id`, or undefined. */
export function valueTypeName(id: number): GgufValueTypeName | undefined {
  for (const [name, value] of Object.entries(GGUF_VALUE_TYPES))
    if (value === id) return name as GgufValueTypeName;
  return undefined;
}

/** Shorthands for building metadata to write. */
export const gguf = {
  string: (value: string): GgufValue => ({ type: 'STRING', value }),
  uint32: (value: number): GgufValue => ({ type: 'UINT32', value }),
  int32: (value: number): GgufValue => ({ type: 'INT32', value }),
  float32: (value: number): GgufValue => ({ type: 'FLOAT32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'BOOL', value }),
  uint64: (value: number | bigint): GgufValue => ({ type: 'UINT64', value }),
  array: (itemType: GgufScalarTypeName, value: GgufScalar[]): GgufValue => ({
    type: 'ARRAY',
    itemType,
    value,
  }),
};
