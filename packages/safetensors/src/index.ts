// @webtune/safetensors: read, validate, write and shard safetensors files. Runs in Node and
// browsers; the Node file helpers live in '@webtune/safetensors/node'.
export {
  type FloatDtype,
  floatBitsToBfloat16Bits,
  floatBitsToHalfBits,
  fromFloat32,
  halfBitsToFloatBits,
  toFloat32,
} from './convert.js';
export {
  dtypeBits,
  elementCount,
  isSafetensorsDtype,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  tensorByteLength,
} from './dtype.js';
export { SafetensorsError } from './errors.js';
export {
  type HeaderParseOptions,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
} from './header.js';
export {
  type ReadSafetensorsOptions,
  readSafetensors,
  readSafetensorsBytes,
  type SafetensorsEntry,
  SafetensorsFile,
} from './read.js';
export {
  formatSafetensorsIndex,
  indexFileName,
  openShardedSafetensors,
  type PlannedShard,
  parseSafetensorsIndex,
  planSafetensorsShards,
  type SafetensorsIndex,
  type ShardOptions,
  shardFileName,
  shardSafetensors,
} from './shard.js';
export { blobReader, bytesReader, type RandomAccessReader, type SafetensorsSource } from './source.js';
export { type SafetensorsTensorInput, sortForWriting, writeSafetensors } from './write.js';
