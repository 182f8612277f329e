import { describe, expect, it } from 'vitest';
import {
  LOGITS_CHUNK_ALIGN,
  LOGITS_CHUNK_BYTES,
  logitsChunkRows,
  TRAINED_HEAD_LOGITS_BYTES,
} from './logits-chunks.js';

const BINDING = 128 * 1024 ** 2;
const rule = (rows: number, vocabSize: number, headFrozen = true, maxBindingBytes = BINDING) =>
  logitsChunkRows('auto', { rows, vocabSize, headFrozen, maxBindingBytes });

describe('logitsChunkRows', () => {
  it('keeps logits whole while they fit the 64 MiB budget', () => {
    // stories260K, 8 x 256 tokens: 4 MiB of logits.
    expect(rule(8 * 256, 512)).toBeUndefined();
    // 524 rows of 32,000 logits fit 64 MiB; 525 do not.
    const rows = Math.floor(LOGITS_CHUNK_BYTES / (4 * 32000));
    expect(rows).toBe(524);
    expect(rule(rows, 32000)).toBeUndefined();
    expect(rule(rows + 1, 32000)).toBe(320);
  });

  it('splits a frozen head into the fewest chunks of at most 64 MiB, in multiples of 64 rows', () => {
    // stories15M shape, 4 x 256 tokens, vocabulary 32,000: 125 MiB -> 2 chunks of 512 rows.
    expect(rule(1024, 32000)).toBe(512);
    // Qwen3's 151,936 tokens: 110 rows fit 64 MiB, 64 of them are used.
    expect(rule(128, 151936)).toBe(64);
    expect(rule(1024, 151936)).toBe(64);
    for (const [rows, vocab] of [
      [1024, 32000],
      [128, 151936],
      [4 * 512, 151936],
      [999, 50257],
      [3000, 32000],
      [700, 128256],
    ]) {
      const chunk = rule(rows, vocab)!;
      const largest = Math.floor(LOGITS_CHUNK_BYTES / (4 * vocab));
      const limit = Math.floor(largest / LOGITS_CHUNK_ALIGN) * LOGITS_CHUNK_ALIGN;
      expect(chunk * vocab * 4).toBeLessThanOrEqual(LOGITS_CHUNK_BYTES);
      expect(chunk % LOGITS_CHUNK_ALIGN).toBe(0);
      // As few chunks as chunks of `limit` rows would make.
      expect(Math.ceil(rows / chunk)).toBe(Math.ceil(rows / limit));
    }
    // 3,000 rows of 32,000: the limit is 512, 6 chunks; 500 rows each rounded up to 512.
    expect(rule(3000, 32000)).toBe(512);
    // 700 rows of 128,256: the limit is 128, 6 chunks of 117 -> 128.
    expect(rule(700, 128256)).toBe(128);
  });

  it('never makes a chunk larger than one storage binding; fewer than 64 rows align to 8', () => {
    // A 16 MiB binding: 131 rows fit, 128 are used.
    expect(rule(1024, 32000, true, 16 * 1024 ** 2)).toBe(128);
    // 27 rows of Qwen3's logits fit 16 MiB: chunks of 24 (8-row multiples), 6 for 128 rows.
    expect(rule(128, 151936, true, 16 * 1024 ** 2)).toBe(24);
    // A row larger than the binding: one row per chunk.
    expect(rule(3, 32000, true, 1024)).toBe(1);
  });

  it('chunks a trained head only above 256 MiB of logits or one binding (each chunk is recomputed)', () => {
    expect(rule(1024, 32000, false)).toBeUndefined();
    // Qwen3, 4 x 512 tokens: 1.16 GiB of logits -> the frozen head's chunks.
    expect(rule(2048, 151936, false)).toBe(rule(2048, 151936, true));
    const rows = TRAINED_HEAD_LOGITS_BYTES / (4 * 32000);
    expect(rule(Math.floor(rows), 32000, false, 2 * TRAINED_HEAD_LOGITS_BYTES)).toBeUndefined();
    expect(rule(Math.ceil(rows) + 1, 32000, false, 2 * TRAINED_HEAD_LOGITS_BYTES)).toBe(
      rule(Math.ceil(rows) + 1, 32000, true),
    );
    // Above a 64 MiB binding even a trained head is chunked.
    expect(rule(1024, 32000, false, 64 * 1024 ** 2)).toBe(512);
  });

  it('a number overrides the rule: 0 whole, n rows per chunk; anything else is refused', () => {
    const facts = { rows: 1024, vocabSize: 32000, headFrozen: true, maxBindingBytes: BINDING };
    expect(logitsChunkRows(0, facts)).toBeUndefined();
    expect(logitsChunkRows(100, facts)).toBe(100);
    expect(logitsChunkRows(4096, facts)).toBeUndefined();
    expect(logitsChunkRows(7, { ...facts, vocabSize: 8 })).toBe(7);
    for (const bad of [-1, 2.5, Number.NaN, 'all' as never]) {
      expect(() => logitsChunkRows(bad, facts)).toThrow(
        /chunkRows must be 'auto', 0 .* or a positive number/,
      );
    }
  });
});
