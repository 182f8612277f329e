/* WGSL shared by the attention kernels (attention/, attention-tiled/); they bind `params` with softcap, window, masked, causal, query_offset and seq_k, and `mask`. */

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

/**
 * The range of keys a query row sees, in WGSL: window_begin(i) is the first key under a sliding
 * window (keys j with i + query_offset - window < j; 0 without one), key_end_of(i) one past the
 * last (every key, or causal: up to the query's position).
 */
export const KEY_RANGE_WGSL = `fn window_begin(i: u32) -> u32 {
  if (params.window == 0u) { return 0u; }
  return u32(clamp(i32(i) + params.query_offset - i32(params.window) + 1, 0, i32(params.seq_k)));
}
fn key_end_of(i: u32) -> u32 {
  if (params.causal == 0u) { return params.seq_k; }
  return u32(clamp(i32(i) + params.query_offset + 1, 0, i32(params.seq_k)));
}`;

/**
 * Which keys a query row sees, in WGSL: the range above, and key_visible(b, i, j): every key
 * without a mask, the nonzero ones with a padding mask, and those of the query's own (nonzero)
 * segment with segment ids.
 */
export const KEY_MASK_WGSL = `${KEY_RANGE_WGSL}
fn key_visible(b: u32, i: u32, j: u32) -> bool {
  if (params.masked == 0u) { return true; }
  let key = mask[b * params.seq_k + j];
  if (params.masked == 1u || key == 0u) { return key != 0u; }
  let position = u32(i32(i) + params.query_offset);
  return position < params.seq_k && mask[b * params.seq_k + position] == key;
}`;

/**
 * The uniforms every forward attention kernel reads (attention.ts, key-lanes.ts,
 * attention-tiled/); each puts its own block counts in front.
 */
export const ATTENTION_PARAM_FIELDS = [
  { name: 'seq_q', type: 'u32' as const },
  { name: 'seq_k', type: 'u32' as const },
  { name: 'heads_q', type: 'u32' as const },
  { name: 'heads_kv', type: 'u32' as const },
  { name: 'group', type: 'u32' as const },
  { name: 'query_offset', type: 'i32' as const },
  { name: 'scale', type: 'f32' as const },
  { name: 'empty_logsumexp', type: 'f32' as const },
  { name: 'causal', type: 'u32' as const },
  // 0 = no mask, 1 = padding mask, 2 = segment ids.
  { name: 'masked', type: 'u32' as const },
  // 0 = no sliding window.
  { name: 'window', type: 'u32' as const },
  // 0 = no soft-capping.
  { name: 'softcap', type: 'f32' as const },
];
