import { describe, expect, it } from 'vitest';
import { GgufError } from './errors.js';
import { GGML_TYPES } from './ggml-types.js';
import { gguf } from './metadata.js';
import { readGguf } from './read.js';
import { writeGgufBytes } from './write.js';

const values = Float32Array.from({ length: 64 }, (_, index) => index / 7 - 3);

async function sample(): Promise<Uint8Array> {
  return writeGgufBytes(
    [
      ['general.architecture', gguf.string('llama')],
      ['general.alignment', gguf.uint32(64)],
      ['test.flag', gguf.bool(true)],
      ['test.big', gguf.uint64(2n ** 60n)],
      ['test.names', gguf.array('STRING', ['a', 'ü', ''])],
      ['test.scores', gguf.array('FLOAT32', [0.5, -1])],
    ],
    [
      { name: 'a', shape: [2, 32], type: 'F32', data: new Uint8Array(values.buffer) },
      { name: 'b', shape: [64], type: 'Q8_0', data: new Uint8Array(68) },
    ],
  );
}

/** Rejects with a GgufError whose message matches `pattern`. */
async function expectGgufError(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const error = await readGguf(bytes, { fileName: 'bad.gguf' }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GgufError);
  expect((error as Error).message).toMatch(/^bad\.gguf: /);
  expect((error as Error).message).toMatch(pattern);
}

function patch(bytes: Uint8Array, offset: number, write: (view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  write(new DataView(copy.buffer, offset));
  return copy;
}

describe('readGguf', () => {
  it('reads metadata with their types and tensors by byte range', async () => {
    const file = await readGguf(await sample());
    expect(file.version).toBe(3);
    expect(file.header.alignment).toBe(64);
    expect(file.header.dataStart % 64).toBe(0);
    expect(file.string('general.architecture')).toBe('llama');
    expect(file.boolean('test.flag')).toBe(true);
    expect(file.value('test.big')).toBe(2n ** 60n);
    expect(file.array('test.names', 'string')).toEqual(['a', 'ü', '']);
    expect(file.array('test.scores', 'number')).toEqual([0.5, -1]);
    expect(file.tensors.map((t) => [t.name, t.typeName, t.shape, t.dimensions, t.offset])).toEqual([
      ['a', 'F32', [2, 32], [32, 2], 0],
      ['b', 'Q8_0', [64], [64], 256],
    ]);
    expect(Array.from(await file.readFloat32('a'))).toEqual(Array.from(values));
    expect(Array.from(await file.readFloat32('b'))).toEqual(new Array(64).fill(0));
  });

  it('names the key when a metadata value has the wrong type', async () => {
    const file = await readGguf(await sample(), { fileName: 'x.gguf' });
    expect(() => file.number('general.architecture')).toThrow(
      'x.gguf: key "general.architecture": must be a number, the file stores STRING',
    );
    expect(() => file.array('test.names', 'number')).toThrow(
      /must be an array of numbers, the file stores ARRAY of STRING/,
    );
  });

  it('refuses what is not GGUF v2/v3 little-endian', async () => {
    const bytes = await sample();
    await expectGgufError(
      patch(bytes, 0, (view) => view.setUint32(0, 0x12345678, true)),
      /not a GGUF file/,
    );
    await expectGgufError(
      patch(bytes, 4, (view) => view.setUint32(0, 1, true)),
      /version 1/,
    );
    await expectGgufError(
      patch(bytes, 4, (view) => view.setUint32(0, 3, false)),
      /big-endian/,
    );
    await expectGgufError(
      patch(bytes, 4, (view) => view.setUint32(0, 9, true)),
      /version 9 is not supported/,
    );
    await expectGgufError(bytes.subarray(0, 10), /too short/);
  });

  it('checks counts and lengths against the bytes left before trusting them', async () => {
    const bytes = await sample();
    await expectGgufError(
      patch(bytes, 8, (view) => view.setBigUint64(0, 2n ** 40n, true)),
      /claims 1099511627776 tensors/,
    );
    await expectGgufError(
      patch(bytes, 16, (view) => view.setBigUint64(0, 2n ** 62n, true)),
      /too large/,
    );
    // The first key's length.
    await expectGgufError(
      patch(bytes, 24, (view) => view.setBigUint64(0, 10n ** 12n, true)),
      /claims 1000000000000 bytes/,
    );
    await expectGgufError(bytes.subarray(0, 200), /ends inside|runs past the end|claims \d+ items/);
  });

  it('validates tensor infos: type, alignment, bounds, overlap, duplicates', async () => {
    const file = await readGguf(await sample());
    const infoStart = findTensorInfo(await sample(), 'b');
    const bytes = await sample();
    // b's fields after its name: rank (4), one dimension (8), type (4), offset (8).
    const typeAt = infoStart + 8 + 1 + 4 + 8;
    const offsetAt = typeAt + 4;
    await expectGgufError(
      patch(bytes, offsetAt, (view) => view.setBigUint64(0, 32n, true)),
      /offset 32 is not a multiple of the alignment 64/,
    );
    await expectGgufError(
      patch(bytes, offsetAt, (view) => view.setBigUint64(0, 0n, true)),
      /tensor "b": data overlaps tensor "a"|tensor "a": data overlaps tensor "b"/,
    );
    await expectGgufError(
      patch(bytes, offsetAt, (view) => view.setBigUint64(0, 1024n, true)),
      /runs past the end of the data section/,
    );
    await expectGgufError(
      patch(bytes, infoStart + 9, (view) => view.setUint32(0, 5, true)),
      /has 5 dimensions/,
    );
    await expectGgufError(
      patch(bytes, infoStart + 13, (view) => view.setBigUint64(0, 48n, true)),
      /Q8_0, whose rows are blocks of 32, but its row length is 48/,
    );
    await expectGgufError(
      patch(bytes, infoStart + 8, (view) => view.setUint8(0, 'a'.charCodeAt(0))),
      /tensor "a": appears twice/,
    );
    // An unsupported type is listed, and reading it names the tensor and the type.
    const iq = await readGguf(
      patch(bytes, typeAt, (view) => view.setUint32(0, 16, true)),
      { fileName: 'iq.gguf' },
    );
    expect(iq.info('b')!.typeName).toBe('IQ2_XXS');
    await expect(iq.readFloat32('b')).rejects.toThrow(
      'iq.gguf: tensor "b": has type IQ2_XXS, which webtune cannot decode',
    );
    expect(() => iq.assertDecodable()).toThrow(/tensor "b": has type IQ2_XXS/);
    expect(file.info('b')!.type).toBe(GGML_TYPES.Q8_0);
  });

  it('rejects duplicate keys and bad alignment', async () => {
    const duplicate = await writeGgufBytes(
      [
        ['k.a', gguf.uint32(1)],
        ['k.b', gguf.uint32(2)],
      ],
      [],
    );
    const at = findBytes(duplicate, new TextEncoder().encode('k.b'));
    await expectGgufError(
      patch(duplicate, at, (view) => view.setUint8(2, 'a'.charCodeAt(0))),
      /key "k.a": appears twice/,
    );
    const aligned = await writeGgufBytes([['general.alignment', gguf.uint32(64)]], []);
    const value = findBytes(aligned, new TextEncoder().encode('general.alignment')) + 17 + 4;
    await expectGgufError(
      patch(aligned, value, (view) => view.setUint32(0, 48, true)),
      /general.alignment.*power of two/,
    );
  });
});

function findBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error('not found');
}

/** Offset of a tensor info (its name length field): the last length-prefixed occurrence of the name. */
function findTensorInfo(bytes: Uint8Array, name: string): number {
  return findLast(bytes, new TextEncoder().encode(name)) - 8;
}

function findLast(haystack: Uint8Array, needle: Uint8Array): number {
  for (let i = haystack.length - needle.length; i >= 0; i--) {
    let match = true;
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) match = false;
    if (
      match &&
      new DataView(haystack.buffer, haystack.byteOffset + i - 8).getBigUint64(0, true) ===
        BigInt(needle.length)
    )
      return i;
  }
  throw new Error('not found');
}
