import { dtypeRankOf, isSafetensorsDtype, type SafetensorsDtype, tensorByteLength } from './dtype.js';
import { SafetensorsError } from './errors.js';

/** A tensor to write: raw little-endian bytes (any typed array is taken as its bytes). */
export interface SafetensorsTensorInput {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** Checks a tensor list for writing and returns each tensor's bytes. */
export function validateTensorInputs(tensors: readonly SafetensorsTensorInput[]): Map<string, Uint8Array> {
  const bytesByName = new Map<string, Uint8Array>();
  for (const tensor of tensors) {
    const where = { tensorName: tensor.name };
    if (typeof tensor.name !== 'string' || tensor.name === '') {
      throw new SafetensorsError(`tensor name ${JSON.stringify(tensor.name)} is not a non-empty string`);
    }
    if (tensor.name === '__metadata__') throw new SafetensorsError('"__metadata__" is reserved', where);
    if (bytesByName.has(tensor.name)) throw new SafetensorsError('name appears twice', where);
    if (!isSafetensorsDtype(tensor.dtype)) {
      throw new SafetensorsError(`unknown dtype ${JSON.stringify(tensor.dtype)}`, where);
    }
    if (!Array.isArray(tensor.shape) || !tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        `shape ${JSON.stringify(tensor.shape)} is not a list of non-negative integers`,
        where,
      );
    }
    const expected = tensorByteLength(tensor.dtype, tensor.shape);
    if (expected === undefined) {
      throw new SafetensorsError(
        `shape [${tensor.shape.join(', ')}] of ${tensor.dtype} is not a whole number of bytes`,
        where,
      );
    }
    if (!ArrayBuffer.isView(tensor.data)) throw new SafetensorsError('data is not a typed array', where);
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    if (bytes.length !== expected) {
      throw new SafetensorsError(
        `data has ${bytes.length} bytes but ${tensor.dtype} [${tensor.shape.join(', ')}] needs ${expected}`,
        where,
      );
    }
    bytesByName.set(tensor.name, bytes);
  }
  return bytesByName;
}

/**
 * Orders tensors as the reference writer does: by dtype, widest first, then by name. With the
 * header padded to 8 bytes every tensor then starts at an offset aligned to its element size.
 */
export function sortForWriting<T extends { name: string; dtype: SafetensorsDtype }>(
  tensors: readonly T[],
): T[] {
  return [...tensors].sort(
    (a, b) => dtypeRankOf(b.dtype) - dtypeRankOf(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

function checkMetadata(metadata: Record<string, string> | undefined): void {
  if (metadata === undefined) return;
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new SafetensorsError(
        `__metadata__ value for ${JSON.stringify(key)} is ${typeof value}, not a string`,
      );
    }
  }
}

/**
 * Serialises tensors to the bytes of a .safetensors file: an 8-byte little-endian header length,
 * a compact JSON header (`__metadata__` first, then tensors sorted like the reference writer),
 * padded with spaces to a multiple of 8, then the tensors' bytes back to back.
 */
export function writeSafetensors(
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Uint8Array {
  const bytesByName = validateTensorInputs(tensors);
  checkMetadata(metadata);
  const ordered = sortForWriting(tensors);
  // Keys are written by hand: a JS object would reorder integer-like tensor names.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort();
    const body = keys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(metadata[key])}`).join(',');
    parts.push(`"__metadata__":{${body}}`);
  }
  let offset = 0;
  for (const tensor of ordered) {
    const length = bytesByName.get(tensor.name)!.length;
    const info = `{"dtype":${JSON.stringify(tensor.dtype)},"shape":[${tensor.shape.join(',')}],"data_offsets":[${offset},${offset + length}]}`;
    parts.push(`${JSON.stringify(tensor.name)}:${info}`);
    offset += length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let position = 8 + headerLength;
  for (const tensor of ordered) {
    const bytes = bytesByName.get(tensor.name)!;
    out.set(bytes, position);
    position += bytes.length;
  }
  return out;
}
