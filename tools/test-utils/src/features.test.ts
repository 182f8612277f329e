import { describe, expect, it } from 'vitest';
import { f16Usable, requireF16 } from './features.js';

describe('requireF16', () => {
  it('returns when the feature is there, skips with the reason when not, throws when required', () => {
    const notes: (string | undefined)[] = [];
    const context = { skip: (note?: string) => void notes.push(note) };
    requireF16(context, true);
    expect(notes).toEqual([]);
    const saved = process.env.WEBTUNE_REQUIRE_F16;
    try {
      delete process.env.WEBTUNE_REQUIRE_F16;
      requireF16(context, false);
      expect(notes).toEqual(["the WebGPU adapter lacks the 'shader-f16' feature"]);
      process.env.WEBTUNE_REQUIRE_F16 = '1';
      expect(() => requireF16(context, false)).toThrow(/shader-f16.*WEBTUNE_REQUIRE_F16=1 requires it/);
    } finally {
      if (saved === undefined) delete process.env.WEBTUNE_REQUIRE_F16;
      else process.env.WEBTUNE_REQUIRE_F16 = saved;
    }
  });

  it('skips the running test for real (vitest reports it skipped)', (context) => {
    const saved = process.env.WEBTUNE_REQUIRE_F16;
    delete process.env.WEBTUNE_REQUIRE_F16;
    try {
      requireF16(context, false);
      throw new Error('not reached: context.skip stops the test');
    } finally {
      if (saved !== undefined) process.env.WEBTUNE_REQUIRE_F16 = saved;
    }
  });

  it('f16Usable: true with the feature; false without it, or a throw when required', () => {
    const saved = process.env.WEBTUNE_REQUIRE_F16;
    try {
      delete process.env.WEBTUNE_REQUIRE_F16;
      expect(f16Usable(true)).toBe(true);
      expect(f16Usable(false)).toBe(false);
      process.env.WEBTUNE_REQUIRE_F16 = '1';
      expect(f16Usable(true)).toBe(true);
      expect(() => f16Usable(false)).toThrow(/WEBTUNE_REQUIRE_F16=1 requires it/);
    } finally {
      if (saved === undefined) delete process.env.WEBTUNE_REQUIRE_F16;
      else process.env.WEBTUNE_REQUIRE_F16 = saved;
    }
  });
});
