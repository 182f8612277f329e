import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GgufError } from './errors.js';
import { gguf } from './metadata.js';
import { openGgufModel } from './model.js';
import { readGguf } from './read.js';
import { writeGgufBytes } from './write.js';

/** A small but complete model-like file to mutate. */
const seed = await writeGgufBytes(
  [
    ['general.architecture', gguf.string('llama')],
    ['llama.embedding_length', gguf.uint32(32)],
    ['llama.block_count', gguf.uint32(1)],
    ['llama.feed_forward_length', gguf.uint32(64)],
    ['llama.attention.head_count', gguf.uint32(2)],
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.array('STRING', ['<unk>', '<s>', '</s>', '▁a', 'b'])],
    ['tokenizer.ggml.scores', gguf.array('FLOAT32', [0, 0, 0, -1, -2])],
    ['tokenizer.ggml.token_type', gguf.array('INT32', [2, 3, 3, 1, 1])],
  ],
  [
    { name: 'token_embd.weight', shape: [5, 32], type: 'Q8_0', data: new Uint8Array(5 * 34) },
    { name: 'output_norm.weight', shape: [32], type: 'F32', data: new Uint8Array(128) },
    { name: 'blk.0.attn_q.weight', shape: [32, 32], type: 'Q4_0', data: new Uint8Array(32 * 18) },
  ],
);

/**
 * Reads a possibly corrupt file all the way (header, model mapping, every tensor) and returns
 * what ended it: 'ok' or the error. Anything but a GgufError (a RangeError from a DataView, a
 * TypeError, a hang) is a reader bug.
 */
async function readAll(bytes: Uint8Array): Promise<unknown> {
  try {
    const file = await readGguf(bytes, { fileName: 'fuzz.gguf' });
    for (const tensor of file.tensors) {
      try {
        await file.readFloat32(tensor.name);
      } catch (error) {
        if (!(error instanceof GgufError)) throw error;
      }
    }
    try {
      const model = await openGgufModel(file);
      for await (const _ of model.tensors());
    } catch (error) {
      if (!(error instanceof GgufError)) throw error;
    }
    return 'ok';
  } catch (error) {
    return error;
  }
}

function endsWell(outcome: unknown): boolean {
  return outcome === 'ok' || outcome instanceof GgufError;
}

describe('GGUF reader fuzzing (fast-check)', () => {
  it('the seed file reads', async () => {
    expect(await readAll(seed)).toBe('ok');
  });

  it('byte mutations in the header end in ok or a GgufError', async () => {
    const headerEnd = (await readGguf(seed)).header.dataStart;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: headerEnd - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (mutations) => {
          const bytes = seed.slice();
          for (const [offset, value] of mutations) bytes[offset] = value;
          const outcome = await readAll(bytes);
          if (!endsWell(outcome)) throw outcome;
        },
      ),
      { numRuns: 1000, seed: 15 },
    );
  });

  it('huge counts, lengths, dimensions and offsets written over 8-byte fields end in a GgufError', async () => {
    const headerEnd = (await readGguf(seed)).header.dataStart;
    const huge = fc.oneof(
      fc.constant(2n ** 64n - 1n),
      fc.constant(2n ** 63n),
      fc.constant(2n ** 53n),
      fc.constant(2n ** 32n),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: headerEnd - 8 }), huge, async (offset, value) => {
        const bytes = seed.slice();
        new DataView(bytes.buffer).setBigUint64(offset, value, true);
        const outcome = await readAll(bytes);
        if (!endsWell(outcome)) throw outcome;
      }),
      { numRuns: 300, seed: 16 },
    );
  });

  it('every truncation ends in a GgufError', async () => {
    for (let length = 0; length < seed.length; length += length < 600 ? 1 : 7) {
      const outcome = await readAll(seed.subarray(0, length));
      expect(outcome, `truncated to ${length}`).toBeInstanceOf(GgufError);
    }
  });

  it('random bytes after a valid magic end in a GgufError', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 400 }),
        fc.constantFrom(2, 3),
        async (tail, version) => {
          const bytes = new Uint8Array(8 + tail.length);
          const view = new DataView(bytes.buffer);
          view.setUint32(0, 0x46554747, true);
          view.setUint32(4, version, true);
          bytes.set(tail, 8);
          const outcome = await readAll(bytes);
          if (!endsWell(outcome)) throw outcome;
        },
      ),
      { numRuns: 300, seed: 17 },
    );
  });
});
