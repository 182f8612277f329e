import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { fromFloat32, toFloat32 } from './convert.js';
import { dtypeBits } from './dtype.js';
import { openShardedSafetensorsFiles, writeShardedSafetensors } from './node.js';
import { readSafetensors, readSafetensorsBytes } from './read.js';
import {
  openShardedSafetensors,
  parseSafetensorsIndex,
  planSafetensorsShards,
  shardFileName,
  shardSafetensors,
} from './shard.js';
import { type SafetensorsTensorInput, writeSafetensors } from './write.js';

function sampleTensors(seed: number): SafetensorsTensorInput[] {
  const rng = new Rng(seed);
  return [
    { name: 'b.weight', dtype: 'F32', shape: [7, 3], data: rng.normal(21) },
    { name: 'a.weight', dtype: 'F16', shape: [33], data: fromFloat32(rng.normal(33), 'F16') },
    { name: 'c.bias', dtype: 'BF16', shape: [5], data: fromFloat32(rng.normal(5), 'BF16') },
    { name: 'ids', dtype: 'I64', shape: [2, 2], data: new BigInt64Array([1n, -2n, 3n, 2n ** 40n]) },
    { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'step', dtype: 'I32', shape: [], data: new Int32Array([42]) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    { name: '10', dtype: 'U8', shape: [1], data: new Uint8Array([9]) },
    { name: '9', dtype: 'U8', shape: [1], data: new Uint8Array([8]) },
    { name: 'scale', dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -1e300]) },
  ];
}

const bytesOf = (data: ArrayBufferView) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

describe('writeSafetensors', () => {
  it('round-trips names, dtypes, shapes, bytes and metadata', () => {
    const tensors = sampleTensors(1);
    const file = writeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const read = readSafetensorsBytes(file, { fileName: 'roundtrip.safetensors' });
    expect(read.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect(read.tensors).toHaveLength(tensors.length);
    for (const tensor of tensors) {
      const entry = read.tensors.find((candidate) => candidate.name === tensor.name)!;
      expect(entry.dtype).toBe(tensor.dtype);
      expect(entry.shape).toEqual(tensor.shape);
      expect(entry.data).toEqual(bytesOf(tensor.data));
    }
    expect(toFloat32(read.tensors.find((entry) => entry.name === 'b.weight')!)).toEqual(tensors[0].data);
  });

  it('pads the header to 8 bytes and aligns each tensor to its element size', () => {
    const file = writeSafetensors(sampleTensors(2));
    const { header } = readSafetensorsBytes(file);
    expect(header.headerLength % 8).toBe(0);
    expect(
      new TextDecoder()
        .decode(file.subarray(8, 8 + header.headerLength))
        .trimEnd()
        .endsWith('}'),
    ).toBe(true);
    for (const tensor of header.tensors) {
      expect(tensor.dataOffsets[0] % Math.max(1, dtypeBits(tensor.dtype) / 8)).toBe(0);
    }
    // Widest dtype first, then names in byte order (the header keeps that order too).
    expect(header.tensors.map((tensor) => tensor.name)).toEqual([
      'ids',
      'scale',
      'b.weight',
      'empty',
      'step',
      'c.bias',
      'a.weight',
      '10',
      '9',
      'mask',
    ]);
    const json = new TextDecoder().decode(file.subarray(8, 8 + header.headerLength));
    expect(json.indexOf('"10"')).toBeLessThan(json.indexOf('"9"'));
  });

  it('rejects bad inputs naming the tensor', () => {
    const good = { name: 'w', dtype: 'F32' as const, shape: [2], data: new Float32Array(2) };
    expect(() => writeSafetensors([good, good])).toThrow(/tensor "w": name appears twice/);
    expect(() => writeSafetensors([{ ...good, data: new Float32Array(3) }])).toThrow(
      /tensor "w": data has 12 bytes but F32 \[2\] needs 8/,
    );
    expect(() => writeSafetensors([{ ...good, dtype: 'F12' as 'F32' }])).toThrow(
      /tensor "w": unknown dtype "F12"/,
    );
    expect(() => writeSafetensors([{ ...good, shape: [-2] }])).toThrow(/tensor "w": shape \[-2\]/);
    expect(() => writeSafetensors([{ ...good, name: '__metadata__' }])).toThrow(/reserved/);
  });
});

describe('shardSafetensors', () => {
  it('splits greedily with Hugging Face names and an index, and reads back through it', async () => {
    const rng = new Rng(5);
    const tensors: SafetensorsTensorInput[] = Array.from({ length: 7 }, (_, index) => ({
      name: `model.layers.${index}.weight`,
      dtype: 'F32',
      shape: [10 + index],
      data: rng.normal(10 + index),
    }));
    // Sizes 40, 44, 48, 52, 56, 60, 64 bytes with 100-byte shards: [40,44] [48,52] [56] [60] [64].
    const { files, index, indexJson } = shardSafetensors(tensors, { maxShardBytes: 100 });
    expect(files.map((file) => file.fileName)).toEqual(
      [1, 2, 3, 4, 5].map((i) => `model-0000${i}-of-00005.safetensors`),
    );
    expect(index.metadata.total_size).toBe(40 + 44 + 48 + 52 + 56 + 60 + 64);
    expect(index.weight_map['model.layers.1.weight']).toBe('model-00001-of-00005.safetensors');
    expect(index.weight_map['model.layers.3.weight']).toBe('model-00002-of-00005.safetensors');
    expect(index.weight_map['model.layers.6.weight']).toBe('model-00005-of-00005.safetensors');
    expect(indexJson.startsWith('{\n  "metadata": {\n    "total_size": 364\n  },\n  "weight_map": {\n')).toBe(
      true,
    );
    expect(indexJson.endsWith('}\n')).toBe(true);
    expect(parseSafetensorsIndex(indexJson)).toEqual(index);

    const byName = new Map(files.map((file) => [file.fileName, file.bytes]));
    const sharded = await openShardedSafetensors(
      parseSafetensorsIndex(indexJson),
      (fileName) => byName.get(fileName)!,
    );
    const seen: string[] = [];
    for await (const entry of sharded.entries()) {
      seen.push(entry.name);
      const original = tensors.find((tensor) => tensor.name === entry.name)!;
      expect(toFloat32(entry)).toEqual(original.data);
      expect(entry.shape).toEqual(original.shape);
    }
    expect(seen.sort()).toEqual(tensors.map((tensor) => tensor.name).sort());
    expect(toFloat32(await sharded.read('model.layers.4.weight'))).toEqual(tensors[4].data);
    for (const file of files) expect((await readSafetensors(file.bytes)).metadata).toEqual({ format: 'pt' });
  });

  it('gives an oversized tensor its own shard and names a single shard model.safetensors', () => {
    const plan = planSafetensorsShards(
      [
        { name: 'small', dtype: 'F32', shape: [2] },
        { name: 'huge', dtype: 'F32', shape: [1000] },
        { name: 'tail', dtype: 'F32', shape: [2] },
      ],
      { maxShardBytes: 64 },
    );
    expect(plan.shards.map((shard) => shard.tensorNames)).toEqual([['small'], ['huge'], ['tail']]);
    expect(
      planSafetensorsShards([{ name: 'x', dtype: 'F16', shape: [4] }], { maxShardBytes: 1e9 }).shards[0]
        .fileName,
    ).toBe('model.safetensors');
    expect(shardFileName(11, 12, 'adapter_model')).toBe('adapter_model-00012-of-00012.safetensors');
  });

  it('writes and reopens shards on disk', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'webtune-safetensors-'));
    try {
      const tensors = sampleTensors(9);
      const names = await writeShardedSafetensors(directory, tensors, { maxShardBytes: 64 });
      expect((await readdir(directory)).sort()).toEqual([...names].sort());
      expect(names.at(-1)).toBe('model.safetensors.index.json');
      const sharded = await openShardedSafetensorsFiles(join(directory, 'model.safetensors.index.json'));
      try {
        for (const tensor of tensors)
          expect((await sharded.read(tensor.name)).data).toEqual(bytesOf(tensor.data));
      } finally {
        await sharded.close();
      }
      const index = JSON.parse(await readFile(join(directory, 'model.safetensors.index.json'), 'utf8'));
      expect(Object.keys(index.weight_map).sort()).toEqual(tensors.map((tensor) => tensor.name).sort());
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
