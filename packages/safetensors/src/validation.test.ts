import { describe, expect, it } from 'vitest';
import { SafetensorsError } from './errors.js';
import { parseSafetensorsHeader } from './header.js';
import { readSafetensors } from './read.js';
import { writeSafetensors } from './write.js';

/** A file whose header is `json` (as given, unpadded) followed by `dataLength` bytes. */
function rawFile(json: string, dataLength: number, headerLength?: number): Uint8Array {
  const header = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + header.length + dataLength);
  const view = new DataView(out.buffer);
  const length = headerLength ?? header.length;
  view.setUint32(0, length % 2 ** 32, true);
  view.setUint32(4, Math.floor(length / 2 ** 32), true);
  out.set(header, 8);
  return out;
}

const tensor = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

const valid = writeSafetensors([
  { name: 'a', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
  { name: 'b', dtype: 'F32', shape: [2], data: new Float32Array([5, 6]) },
]);

const cases: { name: string; bytes: Uint8Array; error: RegExp }[] = [
  { name: 'empty file', bytes: new Uint8Array(0), error: /^bad\.safetensors: file is 0 bytes, too short/ },
  {
    name: 'truncated length prefix',
    bytes: valid.subarray(0, 5),
    error: /file is 5 bytes, too short .*truncated/,
  },
  {
    name: 'truncated in the header',
    bytes: valid.subarray(0, 20),
    error: /header length \d+ runs past the end of the file \(20 bytes, so at most 12\)/,
  },
  {
    name: 'truncated in the data',
    bytes: valid.subarray(0, valid.length - 4),
    error: /tensor "b": data_offsets \[16, 24\] run past the data section \(20 bytes; truncated file\?\)/,
  },
  {
    name: 'header length beyond the file',
    bytes: rawFile(`{"a":${tensor('U8', [1], [0, 1])}}`, 1, 4000),
    error: /header length 4000 runs past the end of the file/,
  },
  {
    name: 'header length over the 100 MB limit',
    bytes: rawFile('{}', 0, 2 ** 40),
    error: /header length 1099511627776 exceeds the 100000000-byte limit/,
  },
  { name: 'bad JSON', bytes: rawFile('{"a": {"dtype": "F32",', 0), error: /header is not valid JSON/ },
  { name: 'not an object', bytes: rawFile('[1, 2]', 0), error: /header does not start with "\{"/ },
  {
    name: 'invalid UTF-8',
    bytes: rawFile('{"\u00e9":1}', 0).fill(0xff, 10, 11),
    error: /header is not valid UTF-8/,
  },
  {
    name: 'unknown dtype',
    bytes: rawFile(`{"w":${tensor('Q4_0', [4], [0, 2])}}`, 2),
    error: /^bad\.safetensors: tensor "w": unknown dtype "Q4_0"$/,
  },
  {
    name: 'negative dimension',
    bytes: rawFile(`{"w":${tensor('F32', [2, -1], [0, 0])}}`, 0),
    error: /tensor "w": shape \[2,-1\] has -1, not a non-negative integer/,
  },
  {
    name: 'fractional dimension',
    bytes: rawFile(`{"w":${tensor('F32', [1.5], [0, 6])}}`, 6),
    error: /tensor "w": shape \[1.5\] has 1.5/,
  },
  {
    name: 'shape not a list',
    bytes: rawFile(`{"w":${tensor('F32', '4', [0, 16])}}`, 16),
    error: /tensor "w": shape "4" is not a list/,
  },
  {
    name: 'offsets out of order',
    bytes: rawFile(`{"w":${tensor('U8', [0], [4, 2])}}`, 4),
    error: /tensor "w": data_offsets \[4, 2\] end before they begin/,
  },
  {
    name: 'offsets not a pair',
    bytes: rawFile(`{"w":${tensor('U8', [1], [0])}}`, 1),
    error: /tensor "w": data_offsets \[0\] is not a pair/,
  },
  {
    name: 'wrong byte length',
    bytes: rawFile(`{"w":${tensor('F32', [3], [0, 8])}}`, 8),
    error: /^bad\.safetensors: tensor "w": data_offsets \[0, 8\] give 8 bytes, but F32 \[3\] needs 12$/,
  },
  {
    name: 'overlapping offsets',
    bytes: rawFile(`{"x":${tensor('F32', [2], [0, 8])},"y":${tensor('F32', [2], [4, 12])}}`, 12),
    error: /tensor "y": data_offsets \[4, 12\] overlap those of "x" \[0, 8\]/,
  },
  {
    name: 'gap between tensors',
    bytes: rawFile(`{"x":${tensor('F32', [1], [0, 4])},"y":${tensor('F32', [1], [8, 12])}}`, 12),
    error: /tensor "y": data_offsets \[8, 12\] leave bytes 4\.\.8 of the data section unused/,
  },
  {
    name: 'trailing bytes',
    bytes: rawFile(`{"x":${tensor('F32', [1], [0, 4])}}`, 10),
    error: /the data section has 10 bytes but the tensors cover only 4/,
  },
  {
    name: 'metadata value not a string',
    bytes: rawFile('{"__metadata__":{"format":1}}', 0),
    error: /__metadata__ value for "format" is number, not a string/,
  },
  {
    name: 'tensor entry not an object',
    bytes: rawFile('{"w":[1,2,3]}', 0),
    error: /tensor "w": entry is not an object/,
  },
];

describe('corrupt files', () => {
  it.each(cases)('$name', async ({ bytes, error }) => {
    expect(() => parseSafetensorsHeader(bytes, { fileName: 'bad.safetensors' })).toThrow(error);
    const failure = await readSafetensors(new Blob([bytes as Uint8Array<ArrayBuffer>]), {
      fileName: 'bad.safetensors',
    }).catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(SafetensorsError);
    expect((failure as Error).message).toMatch(error);
  });

  it('accepts the valid file the corrupt ones start from', async () => {
    const file = await readSafetensors(valid);
    expect(file.names).toEqual(['a', 'b']);
    expect(file.header.tensors[1].dataOffsets).toEqual([16, 24]);
  });

  it('names the tensor on a failed lookup and a short read', async () => {
    const file = await readSafetensors(valid, { fileName: 'ok.safetensors' });
    await expect(file.read('c')).rejects.toThrow(/^ok\.safetensors: no tensor named "c"/);
    const shortReads = {
      size: valid.length,
      read: async (offset: number, length: number) => valid.subarray(offset, offset + Math.min(length, 12)),
    };
    await expect(readSafetensors(shortReads, { fileName: 'short.safetensors' })).rejects.toThrow(
      /^short\.safetensors: reader returned 12 bytes at offset 8, expected \d+$/,
    );
  });
});
