import type { UniformField } from '../../device/uniforms.js';
import { kernelSource } from '../shared/wgsl.js';
import { BLOCK, type PackedFormat } from './formats.js';

/** Output rows one invocation computes (the weight block it decodes is reused across them). */
export const TILE_ROWS = 4;

const u32 = (name: string): UniformField => ({ name, type: 'u32' });

export const FORWARD_FIELDS = [
  'm',
  'n',
  'k',
  'blocks',
  'row_bytes',
  'tiles_m',
  'x_offset',
  'out_offset',
  'out_row',
].map(u32);

export const INPUT_GRAD_FIELDS = [
  'm',
  'n',
  'k',
  'blocks',
  'row_bytes',
  'tiles_m',
  'dy_row',
  'dy_col',
  'accumulate',
].map(u32);

export const UNPACK_FIELDS = ['rows', 'k', 'blocks', 'row_bytes', 'w_row0', 'out_row0'].map(u32);

/**
 * WGSL that decodes block `blk` (values blk * 32 ..) of the weight row starting at byte
 * `row_base` of `w` (array<u32>) into `v`. Halves are decoded from their bits (no shader-f16
 * needed); f16 subnormals are kept. Values past `k` (a half row not a multiple of 32) are 0.
 */
function decodeHelpers(format: PackedFormat): string {
  const common = `
fn byte_at(o: u32) -> u32 { return (w[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu; }
// A 16-bit value at an even byte offset (it never straddles two words).
fn half_at(o: u32) -> u32 { return (w[o >> 2u] >> ((o & 3u) * 8u)) & 0xffffu; }
fn half_to_f32(h: u32) -> f32 {
  let sign = (h >> 15u) << 31u;
  let e = (h >> 10u) & 31u;
  let mantissa = h & 1023u;
  if (e == 0u) {
    let magnitude = f32(mantissa) * 5.9604644775390625e-8;
    return select(magnitude, -magnitude, sign != 0u);
  }
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (mantissa << 13u));
}`;
  const body: Record<PackedFormat, string> = {
    f16: `
  let k0 = blk * ${BLOCK}u;
  for (var j = 0u; j < ${BLOCK}u; j++) {
    (*v)[j] = select(0.0, half_to_f32(half_at(row_base + (k0 + j) * 2u)), k0 + j < params.k);
  }`,
    bf16: `
  let k0 = blk * ${BLOCK}u;
  for (var j = 0u; j < ${BLOCK}u; j++) {
    (*v)[j] = select(0.0, bitcast<f32>(half_at(row_base + (k0 + j) * 2u) << 16u), k0 + j < params.k);
  }`,
    q8_0: `
  let base = row_base + blk * 34u;
  let d = half_to_f32(half_at(base));
  for (var j = 0u; j < ${BLOCK}u; j++) {
    let q = byte_at(base + 2u + j);
    (*v)[j] = d * f32(i32(q) - select(0i, 256i, q >= 128u));
  }`,
    q4_0: `
  let base = row_base + blk * 18u;
  let d = half_to_f32(half_at(base));
  for (var j = 0u; j < ${BLOCK / 2}u; j++) {
    let q = byte_at(base + 2u + j);
    (*v)[j] = d * f32(i32(q & 15u) - 8i);
    (*v)[j + ${BLOCK / 2}u] = d * f32(i32(q >> 4u) - 8i);
  }`,
    // Sub-block blk & 7 of super-block blk >> 3 (144 bytes: d, dmin, 12 scale bytes, 128 of nibbles).
    q4_k: `
  let base = row_base + (blk >> 3u) * 144u;
  let sub = blk & 7u;
  let d = half_to_f32(half_at(base));
  let dmin = half_to_f32(half_at(base + 2u));
  let s = base + 4u;
  var scale: u32;
  var min: u32;
  if (sub < 4u) {
    scale = byte_at(s + sub) & 63u;
    min = byte_at(s + sub + 4u) & 63u;
  } else {
    scale = (byte_at(s + sub + 4u) & 15u) | ((byte_at(s + sub - 4u) >> 6u) << 4u);
    min = (byte_at(s + sub + 4u) >> 4u) | ((byte_at(s + sub) >> 6u) << 4u);
  }
  let d1 = d * f32(scale);
  let m1 = dmin * f32(min);
  let quants = base + 16u + (sub >> 1u) * 32u;
  let shift = (sub & 1u) * 4u;
  for (var j = 0u; j < ${BLOCK}u; j++) {
    (*v)[j] = d1 * f32((byte_at(quants + j) >> shift) & 15u) - m1;
  }`,
  };
  return `${common}
fn decode_block(row_base: u32, blk: u32, v: ptr<function, array<f32, ${BLOCK}>>) {${body[format]}
}`;
}

/** out[m, out_offset + col] = sum_k x[m, k] * W[col, k] for the weight rows of one chunk. */
export function forwardSource(format: PackedFormat, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'w', type: 'u32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: FORWARD_FIELDS,
    workgroupSize: workgroup,
    helpers: decodeHelpers(format),
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n * params.tiles_m) { return; }
  let col = index % params.n;
  let m0 = (index / params.n) * ${TILE_ROWS}u;
  var acc: array<f32, ${TILE_ROWS}>;
  var v: array<f32, ${BLOCK}>;
  let row_base = col * params.row_bytes;
  for (var blk = 0u; blk < params.blocks; blk++) {
    decode_block(row_base, blk, &v);
    let k0 = blk * ${BLOCK}u;
    let count = min(${BLOCK}u, params.k - k0);
    for (var t = 0u; t < ${TILE_ROWS}u; t++) {
      let m = m0 + t;
      if (m < params.m) {
        let xb = params.x_offset + m * params.k + k0;
        var s = 0.0;
        for (var j = 0u; j < count; j++) { s += x[xb + j] * v[j]; }
        acc[t] += s;
      }
    }
  }
  for (var t = 0u; t < ${TILE_ROWS}u; t++) {
    let m = m0 + t;
    if (m < params.m) { out[params.out_offset + m * params.out_row + col] = acc[t]; }
  }`,
  });
}

/**
 * dx[m, k] (+)= sum_n dy[m, dy_col + n] * W[n, k] over the rows n of one weight chunk: one
 * invocation per (block of 32 k values, tile of rows m).
 */
export function inputGradSource(format: PackedFormat, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'dy', type: 'f32', access: 'read' },
      { name: 'w', type: 'u32', access: 'read' },
      { name: 'dx', type: 'f32', access: 'read_write' },
    ],
    uniforms: INPUT_GRAD_FIELDS,
    workgroupSize: workgroup,
    helpers: decodeHelpers(format),
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.blocks * params.tiles_m) { return; }
  let blk = index % params.blocks;
  let m0 = (index / params.blocks) * ${TILE_ROWS}u;
  var acc: array<f32, ${TILE_ROWS * BLOCK}>;
  var v: array<f32, ${BLOCK}>;
  for (var r = 0u; r < params.n; r++) {
    decode_block(r * params.row_bytes, blk, &v);
    for (var t = 0u; t < ${TILE_ROWS}u; t++) {
      let m = m0 + t;
      if (m < params.m) {
        let g = dy[m * params.dy_row + params.dy_col + r];
        for (var j = 0u; j < ${BLOCK}u; j++) { acc[t * ${BLOCK}u + j] += g * v[j]; }
      }
    }
  }
  let k0 = blk * ${BLOCK}u;
  for (var t = 0u; t < ${TILE_ROWS}u; t++) {
    let m = m0 + t;
    if (m >= params.m) { continue; }
    for (var j = 0u; j < ${BLOCK}u; j++) {
      if (k0 + j < params.k) {
        let at = m * params.k + k0 + j;
        dx[at] = select(acc[t * ${BLOCK}u + j], dx[at] + acc[t * ${BLOCK}u + j], params.accumulate == 1u);
      }
    }
  }`,
  });
}

/** out[out_row0 + r, k] = W[w_row0 + r, k]: decodes rows of a weight chunk into an f32 chunk. */
export function unpackSource(format: PackedFormat, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'w', type: 'u32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: UNPACK_FIELDS,
    workgroupSize: workgroup,
    helpers: decodeHelpers(format),
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.rows * params.blocks) { return; }
  let r = index / params.blocks;
  let blk = index % params.blocks;
  var v: array<f32, ${BLOCK}>;
  decode_block((params.w_row0 + r) * params.row_bytes, blk, &v);
  let k0 = blk * ${BLOCK}u;
  for (var j = 0u; j < ${BLOCK}u; j++) {
    if (k0 + j < params.k) { out[(params.out_row0 + r) * params.k + k0 + j] = v[j]; }
  }`,
  });
}

export const GATHER_FIELDS = [
  'tokens',
  'k',
  'blocks',
  'row_bytes',
  'row0',
  'rows',
  'vocab',
  'zero_outside',
  't0',
].map(u32);

/**
 * out[t - t0, k] = W[ids[t], k] for the tokens t0 .. t0 + tokens whose id falls in this chunk's
 * rows [row0, row0 + rows); with zero_outside, ids outside [0, vocab) give a row of zeros.
 */
export function gatherSource(format: PackedFormat, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'ids', type: 'i32', access: 'read' },
      { name: 'w', type: 'u32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: GATHER_FIELDS,
    workgroupSize: workgroup,
    helpers: decodeHelpers(format),
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.tokens * params.blocks) { return; }
  let t = index / params.blocks;
  let blk = index % params.blocks;
  let id = ids[params.t0 + t];
  let k0 = blk * ${BLOCK}u;
  if (id < 0i || u32(id) >= params.vocab) {
    if (params.zero_outside == 1u) {
      for (var j = 0u; j < ${BLOCK}u; j++) {
        if (k0 + j < params.k) { out[t * params.k + k0 + j] = 0.0; }
      }
    }
    return;
  }
  let row = u32(id);
  if (row < params.row0 || row >= params.row0 + params.rows) { return; }
  var v: array<f32, ${BLOCK}>;
  decode_block((row - params.row0) * params.row_bytes, blk, &v);
  for (var j = 0u; j < ${BLOCK}u; j++) {
    if (k0 + j < params.k) { out[t * params.k + k0 + j] = v[j]; }
  }`,
  });
}
