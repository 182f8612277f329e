import type { UniformField } from '../../device/uniforms.js';
import { kernelSource } from '../shared/wgsl.js';
import type { PackedFormat } from './formats.js';
import { packedDecoderWgsl } from './packed-decoders-wgsl.js';

/**
 * The packed weight's element-wise kernels (unpack to f32, gather rows of a table); the products
 * are in packed-tiled-wgsl.ts. All decode through packed-decoders-wgsl.ts: one invocation writes
 * one quad (4 values) of a row.
 */
const u32 = (name: string): UniformField => ({ name, type: 'u32' });

export const UNPACK_FIELDS = ['rows', 'k', 'quads', 'row_bytes', 'w_row0', 'out_row0'].map(u32);

/** Stores quad `v` of values k0 .. k0 + 3 at out[at ..], the ones inside the row (< params.k). */
const STORE_QUAD = `
fn store_quad(at: u32, k0: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) {
    if (k0 + j < params.k) { out[at + j] = v[j]; }
  }
}`;

/** out[out_row0 + r, k] = W[w_row0 + r, k]: decodes rows of a weight chunk into an f32 chunk. */
export function unpackSource(format: PackedFormat, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'w', type: 'u32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: UNPACK_FIELDS,
    workgroupSize: workgroup,
    helpers: packedDecoderWgsl(format) + STORE_QUAD,
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.rows * params.quads) { return; }
  let r = index / params.quads;
  let k0 = (index % params.quads) * 4u;
  let v = packed_decode4((params.w_row0 + r) * params.row_bytes, k0);
  store_quad((params.out_row0 + r) * params.k + k0, k0, v);`,
  });
}

export const GATHER_FIELDS = [
  'tokens',
  'k',
  'quads',
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
    helpers: packedDecoderWgsl(format) + STORE_QUAD,
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.tokens * params.quads) { return; }
  let t = index / params.quads;
  let k0 = (index % params.quads) * 4u;
  let id = ids[params.t0 + t];
  if (id < 0i || u32(id) >= params.vocab) {
    if (params.zero_outside == 1u) { store_quad(t * params.k + k0, k0, vec4<f32>(0.0)); }
    return;
  }
  let row = u32(id);
  if (row < params.row0 || row >= params.row0 + params.rows) { return; }
  store_quad(t * params.k + k0, k0, packed_decode4((row - params.row0) * params.row_bytes, k0));`,
  });
}
