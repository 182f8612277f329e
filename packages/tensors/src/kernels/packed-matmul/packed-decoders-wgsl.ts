import type { PackedFormat } from './formats.js';

/**
 * One WGSL block decoder per packed format (formats.ts), shared by every kernel that reads a
 * PackedWeight: the tiled packed matmul (forward and input gradient), the unpack and gather
 * kernels, and any other kernel that wants a packed weight's values (a batch-1 decode product).
 *
 * `packedDecoderWgsl(format)` returns module-scope WGSL that reads the weight chunk from a storage
 * binding `w: array<u32>` (the including kernel declares it; another name via `buffer`) and defines:
 *
 *   fn packed_scale(row: u32, blk: u32) -> vec2<f32>
 *     The (scale, offset) of the 32-value block `blk` of the weight row whose bytes start at byte
 *     `row` of the chunk (row = row index * rowBytes): a value is scale * q - offset. (1, 0) for
 *     f16 and bf16, which have no scales; a Q4_K block is one 32-value sub-block of its super-block.
 *   fn packed_quad(row: u32, k: u32, s: vec2<f32>) -> vec4<f32>
 *     Values k .. k + 3 of that row (k a multiple of 4), given s = packed_scale(row, k / 32).
 *     Each value is exact in f32 and equals decodeRows() (f16 subnormals included). For f16 and
 *     bf16 the values past the row's end (a row length not a multiple of 4) are whatever follows
 *     in the chunk (the next row, or 0 past the binding): the caller masks or ignores them.
 *   fn packed_decode4(row: u32, k: u32) -> vec4<f32>
 *     packed_quad with its scale looked up (for callers that do not keep the block's scale).
 *
 * Loads are 32-bit words; 16-bit fields and the 34- and 18-byte Q8_0 and Q4_0 blocks sit at even
 * byte offsets, so a quad costs two or three word loads and shifts. No shader-f16 is needed.
 * Every name is prefixed `packed_`; `prefix` changes it where one module holds two formats.
 */
export interface PackedDecoderOptions {
  /** Name of the `array<u32>` storage binding holding the chunk (default `w`). */
  buffer?: string;
  /** Prefix of the emitted functions (default `packed_`). */
  prefix?: string;
}

export function packedDecoderWgsl(format: PackedFormat, options: PackedDecoderOptions = {}): string {
  const w = options.buffer ?? 'w';
  const p = options.prefix ?? 'packed_';
  // The 4 bytes from an even byte offset o (one word, or the halves of two).
  const common = `
fn ${p}word(o: u32) -> u32 {
  let i = o >> 2u;
  let lo = ${w}[i];
  return select(lo, (lo >> 16u) | (${w}[i + 1u] << 16u), (o & 2u) != 0u);
}
// The f32 value of the IEEE half at the even byte offset o.
fn ${p}half(o: u32) -> f32 {
  return unpack2x16float(${w}[o >> 2u] >> ((o & 2u) * 8u)).x;
}
// Words holding the 8 bytes from an even byte offset o.
fn ${p}words2(o: u32) -> vec2<u32> {
  let i = o >> 2u;
  let word0 = ${w}[i];
  let word1 = ${w}[i + 1u];
  if ((o & 2u) == 0u) { return vec2<u32>(word0, word1); }
  let word2 = ${w}[i + 2u];
  return vec2<u32>((word0 >> 16u) | (word1 << 16u), (word1 >> 16u) | (word2 << 16u));
}`;
  const bodies: Record<PackedFormat, { scale: string; quad: string }> = {
    f16: {
      scale: 'return vec2<f32>(1.0, 0.0);',
      quad: `let h = ${p}words2(row + k * 2u);
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));`,
    },
    bf16: {
      scale: 'return vec2<f32>(1.0, 0.0);',
      quad: `let h = ${p}words2(row + k * 2u);
  return bitcast<vec4<f32>>(vec4<u32>(h.x << 16u, h.x & 0xffff0000u, h.y << 16u, h.y & 0xffff0000u));`,
    },
    // 34-byte blocks: f16 d, then 32 int8.
    q8_0: {
      scale: `return vec2<f32>(${p}half(row + blk * 34u), 0.0);`,
      quad: `let q = ${p}word(row + (k >> 5u) * 34u + 2u + (k & 31u));
  let v = bitcast<vec4<i32>>(vec4<u32>(q) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
  return s.x * vec4<f32>(v);`,
    },
    // 18-byte blocks: f16 d, then 16 bytes: element j in the low nibble of byte j, j + 16 in the high.
    q4_0: {
      scale: `return vec2<f32>(${p}half(row + blk * 18u), 0.0);`,
      quad: `let j = k & 31u;
  let q = ${p}word(row + (k >> 5u) * 18u + 2u + (j & 15u));
  let shift = select(0u, 4u, j >= 16u);
  let n = (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + vec4<u32>(shift))) & vec4<u32>(15u);
  return s.x * (vec4<f32>(n) - vec4<f32>(8.0));`,
    },
    // 144-byte super-blocks of 8 sub-blocks: f16 d and dmin, 12 bytes of 6-bit scales and mins,
    // 128 bytes of nibbles (sub-blocks 2c and 2c + 1 in the low and high nibbles of bytes 32c ..).
    // Rows are whole super-blocks (144 bytes), so every offset here is word-aligned.
    q4_k: {
      scale: `let base = row + (blk >> 3u) * 144u;
  let sub = blk & 7u;
  let dm = unpack2x16float(${w}[base >> 2u]);
  let s0 = ${w}[(base >> 2u) + 1u];
  let s1 = ${w}[(base >> 2u) + 2u];
  let s2 = ${w}[(base >> 2u) + 3u];
  let lo = sub & 3u;
  let b0 = (s0 >> (lo * 8u)) & 0xffu;
  let b4 = (s1 >> (lo * 8u)) & 0xffu;
  let b8 = (s2 >> (lo * 8u)) & 0xffu;
  var scale = b0 & 63u;
  var min = b4 & 63u;
  if (sub >= 4u) {
    scale = (b8 & 15u) | ((b0 >> 6u) << 4u);
    min = (b8 >> 4u) | ((b4 >> 6u) << 4u);
  }
  return vec2<f32>(dm.x * f32(scale), dm.y * f32(min));`,
      quad: `let blk = k >> 5u;
  let o = row + (blk >> 3u) * 144u + 16u + ((blk & 7u) >> 1u) * 32u + (k & 31u);
  let n = (vec4<u32>(${w}[o >> 2u]) >> (vec4<u32>(0u, 8u, 16u, 24u) + vec4<u32>((blk & 1u) * 4u))) & vec4<u32>(15u);
  return s.x * vec4<f32>(n) - vec4<f32>(s.y);`,
    },
  };
  const body = bodies[format];
  return `${common}
fn ${p}scale(row: u32, blk: u32) -> vec2<f32> {
  ${body.scale}
}
fn ${p}quad(row: u32, k: u32, s: vec2<f32>) -> vec4<f32> {
  ${body.quad}
}
fn ${p}decode4(row: u32, k: u32) -> vec4<f32> {
  return ${p}quad(row, k, ${p}scale(row, k >> 5u));
}`;
}
