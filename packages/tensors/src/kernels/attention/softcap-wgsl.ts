/**
 * Logit soft-capping in WGSL (params.softcap, 0 = none): soft_cap(s) = cap * tanh(s / cap), and
 * its slope as a function of the capped score, 1 - (capped / cap)^2. tanh's argument is clamped to
 * +-15, where it is 1 to f32 precision, so that no implementation's exp overflows to NaN.
 */
export const SOFTCAP_WGSL = `fn soft_cap(s: f32) -> f32 {
  if (params.softcap == 0.0) { return s; }
  return params.softcap * tanh(clamp(s / params.softcap, -15.0, 15.0));
}
fn soft_cap_slope(capped: f32) -> f32 {
  if (params.softcap == 0.0) { return 1.0; }
  let t = capped / params.softcap;
  return 1.0 - t * t;
}`;
