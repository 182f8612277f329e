import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesReader, readSafetensorsBytes, writeSafetensors } from '@webtune/safetensors';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath, requireF16, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../generation/generate.js';
import { loadModelDirectory } from '../node.js';
import { FIXTURES } from '../testing/fixtures.js';
import { interleavedToHalf, loadLlama2c, parseLlama2cHeader } from './llama2c.js';
import { loadPretrained, memoryFileSource } from './pretrained.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

const llamaFolder = join(FIXTURES, 'architectures', 'llama');
const llamaFiles = () => ({
  'config.json': readFileSync(join(llamaFolder, 'config.json')),
  'model.safetensors': readFileSync(join(llamaFolder, 'model.safetensors')),
});

describe('loadPretrained', () => {
  it('streams every tensor once, reporting progress', async () => {
    const progress: string[] = [];
    const { model, tokenizer } = await loadPretrained(device, memoryFileSource(llamaFiles()), {
      onProgress: (event) => progress.push(`${event.loaded}/${event.total} ${event.name}`),
    });
    try {
      const count = [...model.namedParameters()].length;
      expect(progress).toHaveLength(count);
      expect(progress.at(-1)).toMatch(new RegExp(`^${count}/${count} `));
      expect(tokenizer).toBeNull();
    } finally {
      model.dispose();
    }
  });

  it('names a tensor whose shape does not fit the config, and frees what it loaded', async () => {
    const files = llamaFiles();
    const config = JSON.parse(files['config.json'].toString());
    const before = device.memory().liveTensors;
    await expect(
      loadPretrained(
        device,
        memoryFileSource({
          ...files,
          'config.json': Buffer.from(JSON.stringify({ ...config, intermediate_size: 40 })),
        }),
      ),
    ).rejects.toThrow(
      /model\.layers\.0\.mlp\.\w+_proj\.weight has shape \[(48, 32|32, 48)\], the model expects/,
    );
    expect(device.memory().liveTensors).toBe(before);
  });

  it('lists missing and unknown tensors', async () => {
    const { tensors } = readSafetensorsBytes(llamaFiles()['model.safetensors']);
    const without = writeSafetensors(tensors.filter((t) => t.name !== 'model.norm.weight'));
    await expect(
      loadPretrained(device, memoryFileSource({ ...llamaFiles(), 'model.safetensors': without })),
    ).rejects.toThrow(/1 parameters are missing: model\.norm\.weight/);
    const extra = writeSafetensors([
      ...tensors,
      { name: 'model.extra.weight', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    ]);
    await expect(
      loadPretrained(device, memoryFileSource({ ...llamaFiles(), 'model.safetensors': extra })),
    ).rejects.toThrow(/no place for: model\.extra\.weight/);
    const { model } = await loadPretrained(
      device,
      memoryFileSource({ ...llamaFiles(), 'model.safetensors': extra }),
      { strict: false },
    );
    model.dispose();
  });

  it('says what is missing from a folder', async () => {
    await expect(loadPretrained(device, memoryFileSource({}, 'empty'))).rejects.toThrow(
      /empty has no config\.json/,
    );
    await expect(
      loadPretrained(
        device,
        memoryFileSource({
          'config.json': llamaFiles()['config.json'],
          'pytorch_model.bin': new Uint8Array(1),
        }),
      ),
    ).rejects.toThrow(/only pytorch_model\.bin/);
  });
});

describe('llama2.c checkpoints', () => {
  it('permutes interleaved rotary rows to rotate-half, head by head', () => {
    // 2 heads of headDim 4, 1 column: rows (h, 2p + j) -> (h, j * 2 + p).
    const weight = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    expect([...interleavedToHalf(weight, 2, [8, 1])]).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
  });

  it('checks the header against the file size', () => {
    const header = new Uint8Array(28);
    new Int32Array(header.buffer).set([64, 172, 5, 8, 4, 512, 512]);
    expect(() => parseLlama2cHeader(header, 1000, 'tiny.bin')).toThrow(
      /tiny\.bin: 1000 bytes, but a llama2\.c float32 checkpoint with this header holds 1056540/,
    );
    expect(parseLlama2cHeader(header, 1056540)).toMatchObject({
      dim: 64,
      vocabSize: 512,
      sharedClassifier: true,
    });
    new Int32Array(header.buffer).set([64, 172, 5, 7, 4, 512, 512]);
    expect(() => parseLlama2cHeader(header, 1056540)).toThrow(/whole, even heads/);
    expect(() => parseLlama2cHeader(new Uint8Array(10), 10)).toThrow(/too short/);
  });

  it.skipIf(!requireFixtures('models/stories260K-llama2c/stories260K.bin'))(
    'streams a checkpoint layer by layer',
    async () => {
      const bytes = new Uint8Array(readFileSync(fixturePath('models/stories260K-llama2c/stories260K.bin')));
      const reads: number[] = [];
      const reader = bytesReader(bytes, 'stories260K.bin');
      const model = await loadLlama2c(device, {
        size: reader.size,
        name: reader.name,
        read: (offset, length) => {
          reads.push(length);
          return reader.read(offset, length);
        },
      });
      try {
        expect(Math.max(...reads)).toBe(512 * 64 * 4); // the embedding, the largest tensor
        expect(reads.length).toBe(1 + 1 + 5 * 9 + 1);
        expect(model.config.maxPositionEmbeddings).toBe(512);
      } finally {
        model.dispose();
      }
      await expect(loadLlama2c(device, bytesReader(bytes.subarray(0, 5000), 'cut.bin'))).rejects.toThrow(
        /cut\.bin: 5000 bytes/,
      );
    },
  );
});

describe.skipIf(!requireFixtures('models/stories260K-hf'))('f16 parameters', () => {
  it('loads weights as f16 and generates close to f32', async (context) => {
    requireF16(context, device.hasF16);
    const directory = fixturePath('models/stories260K-hf');
    const full = await loadModelDirectory(device, directory);
    const half = await loadModelDirectory(device, directory, { dtype: 'f16' });
    try {
      expect(half.model.getParameterByName('model.norm.weight')?.dtype).toBe('f16');
      const ids = [1, 403, 407, 261, 378];
      const logits = async (model: typeof full.model) =>
        device.scope(async () => model.forward(device.fromArray(ids, [1, ids.length], 'i32')).toArray());
      const a = await logits(full.model);
      const b = await logits(half.model);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst).toBeLessThan(0.1);
      const [greedyFull] = await generate(full.model, null, [[1]], { maxNewTokens: 8 });
      const [greedyHalf] = await generate(half.model, null, [[1]], { maxNewTokens: 8 });
      expect(greedyHalf.tokens).toEqual(greedyFull.tokens);
    } finally {
      full.model.dispose();
      half.model.dispose();
    }
  });
});
