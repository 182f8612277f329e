/** What `requireF16` needs of vitest's test context. */
export interface SkippableContext {
  skip(note?: string): void;
}

/**
 * For a test that needs the adapter's `shader-f16` feature: returns when the device has it; skips
 * the test with the reason when it does not, or fails it under WEBTUNE_REQUIRE_F16=1 (set where
 * the adapter is known to have the feature, as CI's lavapipe does). Call it first in the test:
 * `it('...', async (context) => { requireF16(context, device.hasF16); ... })`.
 */
export function requireF16(context: SkippableContext, hasF16: boolean): void {
  if (hasF16) return;
  const reason = "the WebGPU adapter lacks the 'shader-f16' feature";
  if (process.env.WEBTUNE_REQUIRE_F16 === '1') {
    throw new Error(`${reason}, and WEBTUNE_REQUIRE_F16=1 requires it`);
  }
  context.skip(reason);
}

/**
 * For the f16 part of a test that also covers other types: whether that part can run. False (the
 * caller leaves the part out) when the adapter lacks `shader-f16`, except under
 * WEBTUNE_REQUIRE_F16=1, where it throws instead: `if (f16Usable(device.hasF16)) { ... }`.
 */
export function f16Usable(hasF16: boolean): boolean {
  if (hasF16) return true;
  if (process.env.WEBTUNE_REQUIRE_F16 === '1') {
    throw new Error(
      "the WebGPU adapter lacks the 'shader-f16' feature, and WEBTUNE_REQUIRE_F16=1 requires it",
    );
  }
  return false;
}
