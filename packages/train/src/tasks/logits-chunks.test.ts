import { describe, expect, it } from 'vitest';
import { LOGITS_CHUNK_BYTES, logitsChunkRows, TRAINED_HEAD_LOGITS_BYTES } from './logits-chunks.js';

const BINDING = 128 * 1024 ** 2;
const rule = (rows: number, vocabSize: number, headFrozen = true, maxBindingBytes = BINDING) =>
  logitsChunkRows('auto', { rows, vocabSize, headFrozen, maxBindingBytes });

describe('logitsChunkRows', () => {
  it('keeps logits whole while they fit the 32 MiB budget', () => {
    // stories260K, 8 x 256 tokens: 4 MiB of logits.
    expect(rule(8 * 256, 512)).toBeUndefined();
    // Exactly the budget stays whole; one row more is chunked.
    const rows = LOGITS_CHUNK_BYTES / (4 * 32000);
    expect(rule(Math.floor(rows), 32000)).toBeUndefined();
  });

  it('splits a frozen head into the fewest equal chunks of at most 32 MiB', () => {
    // stories15M shape, 4 x 256 tokens, vocabulary 32,000: 125 MiB -> 4 chunks of 256 rows.
    expect(rule(1024, 32000)).toBe(256);
    // Qwen3's 151,936 tokens, 1 x 128: 55 rows fit 32 MiB -> 3 chunks of 43 rows.
    expect(rule(128, 151936)).toBe(43);
    for (const [rows, vocab] of [
      [1024, 32000],
      [128, 151936],
      [4 * 512, 151936],
      [999, 50257],
    ]) {
      const chunk = rule(rows, vocab)!;
      expect(chunk * vocab * 4).toBeLessThanOrEqual(LOGITS_CHUNK_BYTES);
      // No fewer chunks would do, and they are balanced (the last is short by less than one row
      // per chunk).
      const chunks = Math.ceil(rows / chunk);
      expect(Math.ceil(rows / (chunks - 1)) * vocab * 4).toBeGreaterThan(LOGITS_CHUNK_BYTES);
      expect(rows - (chunks - 1) * chunk).toBeGreaterThan(chunk - chunks);
    }
  });

  it('never makes a chunk larger than one storage binding', () => {
    // A 16 MiB binding: chunks of at most 16 MiB.
    expect(rule(1024, 32000, true, 16 * 1024 ** 2)).toBe(128);
    // A row larger than the binding: one row per chunk.
    expect(rule(3, 32000, true, 1024)).toBe(1);
  });

  it('chunks a trained head only above 256 MiB of logits or one binding (each chunk is recomputed)', () => {
    expect(rule(1024, 32000, false)).toBeUndefined();
    // Qwen3, 4 x 512 tokens: 1.16 GiB of logits -> 32 MiB chunks.
    expect(rule(2048, 151936, false)).toBe(rule(2048, 151936, true));
    const rows = TRAINED_HEAD_LOGITS_BYTES / (4 * 32000);
    expect(rule(Math.floor(rows), 32000, false, 2 * TRAINED_HEAD_LOGITS_BYTES)).toBeUndefined();
    expect(rule(Math.ceil(rows) + 1, 32000, false, 2 * TRAINED_HEAD_LOGITS_BYTES)).toBe(
      rule(Math.ceil(rows) + 1, 32000, true),
    );
    // Above the binding even a trained head is chunked.
    expect(rule(1024, 32000, false, 64 * 1024 ** 2)).toBe(256);
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
