import { type UniformField, uniformStruct } from '../../device/uniforms.js';
import { BLOCK, type PackedFormat } from './formats.js';
import { packedDecoderWgsl } from './packed-decoders-wgsl.js';

/**
 * The shape of one tiled packed-matmul kernel. Both layouts multiply an f32 activation A [m, inner]
 * (row-major, read in place) by the packed weight and accumulate in f32 registers:
 * - `forward`: out[m, col] = sum_k x[m, k] W[col, k] (x W^T): inner = K, columns = weight rows.
 * - `inputGrad`: dx[m, k] = sum_n dy[m, n] W[n, k] (dy W): inner = the weight rows, columns = K.
 * Each invocation computes `rows` x `cols` outputs. The weight values it needs at one inner step
 * (`cols` values of 4 weight rows, or 4 values of `cols` weight rows) are decoded once into
 * registers and reused across all `rows` rows, so a tile of the packed weight is decoded once per
 * row tile, not once per output row. With `subgroups`, the lanes of a workgroup (one subgroup)
 * share the activation rows: lane l loads rows l, l + lanesN, ... and subgroupBroadcast hands them
 * round, as in the f32 register kernel (kernels/matmul/matmul-wgsl.ts).
 */
export interface PackedTileShape {
  format: PackedFormat;
  layout: 'forward' | 'inputGrad';
  /** Output rows per invocation (a multiple of lanesN with subgroups). */
  rows: number;
  /** Output columns per invocation: a multiple of 4; for inputGrad 4 or 8 (one block's scale). */
  cols: number;
  lanesN: number;
  lanesM: number;
  subgroups: boolean;
  /** The activation read as vec4 (its offset and row length are multiples of 4). */
  vectorA: boolean;
}

export function packedTileKey(shape: PackedTileShape): string {
  return [
    shape.format,
    shape.layout,
    shape.subgroups ? 'sg' : 'lanes',
    `${shape.rows}x${shape.cols}`,
    `${shape.lanesN}x${shape.lanesM}`,
    shape.vectorA ? 'a4' : 'a1',
  ].join(':');
}

const u32 = (name: string): UniformField => ({ name, type: 'u32' });

/**
 * m, n: output rows and columns of the launch; inner: length of the sum (K forward, the chunk's
 * weight rows for inputGrad); a_offset, a_row: the activation's first element and row stride;
 * c_offset, c_row: the output's; w_rows: weight rows in the chunk; row_bytes: bytes of one weight
 * row; accumulate: add into the output (later chunks of the input gradient).
 */
export const PACKED_TILE_FIELDS: UniformField[] = [
  'm',
  'n',
  'inner',
  'tiles',
  'tiles_m',
  'a_offset',
  'a_row',
  'c_offset',
  'c_row',
  'w_rows',
  'row_bytes',
  'accumulate',
].map(u32);

export function packedTileSource(shape: PackedTileShape): string {
  const { rows: R, cols: C, lanesN, lanesM, subgroups, layout, format } = shape;
  const forward = layout === 'forward';
  const tileM = R * lanesM;
  const tileN = C * lanesN;
  const half = format === 'f16' || format === 'bf16';
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  const lane = ['x', 'y', 'z', 'w'];

  emit('  let tile = wid.y * nwg.x + wid.x;');
  emit('  if (tile >= params.tiles) { return; }');
  // Row tiles vary fastest: consecutive workgroups decode the same weight tile.
  emit('  let tile_m = tile % params.tiles_m;');
  emit('  let tile_n = tile / params.tiles_m;');
  emit(`  let row0 = tile_m * ${tileM}u${subgroups ? '' : ` + lid.y * ${R}u`};`);
  emit(`  let col0 = tile_n * ${tileN}u + lid.x * ${C}u;`);
  emit('  let last_row = params.m - 1u;');
  // Activation rows this invocation loads (clamped: results of rows past the end are not stored).
  const loads = subgroups ? R / lanesN : R;
  for (let i = 0; i < loads; i++) {
    const row = subgroups ? `row0 + ${i * lanesN}u + lane` : `row0 + ${i}u`;
    emit(`  let a_at_${i} = params.a_offset + min(${row}, last_row) * params.a_row;`);
  }
  if (forward) {
    // Byte offsets of this invocation's weight rows (clamped; columns past the end are not stored).
    for (let j = 0; j < C; j++) {
      emit(`  let w_${j} = min(col0 + ${j}u, params.w_rows - 1u) * params.row_bytes;`);
    }
  }
  for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`  var acc_${r}_${j} = 0.0;`);

  // One inner step of 4: activation vec4s, then the decoded weight values, then R x C x 4 fmas.
  const step = (indent: string, at: string) => {
    for (let i = 0; i < loads; i++) {
      if (shape.vectorA) emit(`${indent}let a_${i} = a[(a_at_${i} + ${at}) / 4u];`);
      else {
        const parts = [0, 1, 2, 3].map(
          (q) => `select(0.0, a[a_at_${i} + ${at} + ${q}u], ${at} + ${q}u < params.inner)`,
        );
        emit(`${indent}let a_${i} = vec4<f32>(${parts.join(', ')});`);
      }
    }
    for (let r = 0; r < R; r++) {
      const source = `a_${subgroups ? Math.floor(r / lanesN) : r}`;
      emit(`${indent}let x_${r} = ${subgroups ? `subgroupBroadcast(${source}, ${r % lanesN}u)` : source};`);
    }
    if (forward) {
      // B(j, q) = W[col0 + j, k + q].
      // A half row whose length is not a multiple of 4 ends inside its last quad: the values past
      // it (the next row's) are zeroed.
      if (half) {
        emit(`${indent}let inside = vec4<u32>(${at}) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.inner);`);
      }
      for (let j = 0; j < C; j++) {
        const quad = `packed_quad(w_${j}, ${at}, s_${j})`;
        emit(`${indent}let b_${j} = ${half ? `select(vec4<f32>(0.0), ${quad}, inside)` : quad};`);
      }
    } else {
      // B(j, q) = W[n + q, col0 + j]: 4 weight rows, cols values each (rows past the chunk give 0).
      for (let q = 0; q < 4; q++) {
        emit(`${indent}let wr_${q} = min(${at} + ${q}u, params.w_rows - 1u) * params.row_bytes;`);
        emit(`${indent}let s_${q} = packed_scale(wr_${q}, col0 >> 5u);`);
        emit(`${indent}let keep_${q} = select(0.0, 1.0, ${at} + ${q}u < params.inner);`);
        for (let g = 0; g < C / 4; g++) {
          emit(`${indent}let b_${q}_${g} = keep_${q} * packed_quad(wr_${q}, col0 + ${4 * g}u, s_${q});`);
        }
      }
    }
    const bValue = (j: number, q: number) =>
      forward ? `b_${j}.${lane[q]}` : `b_${q}_${Math.floor(j / 4)}.${lane[j % 4]}`;
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) {
        let sum = `acc_${r}_${j}`;
        for (let q = 0; q < 4; q++) sum = `fma(x_${r}.${lane[q]}, ${bValue(j, q)}, ${sum})`;
        emit(`${indent}acc_${r}_${j} = ${sum};`);
      }
    }
  };

  if (forward) {
    // Blocks of 32 k share one scale per weight row: looked up once per block.
    emit(`  let blocks = (params.inner + ${BLOCK - 1}u) / ${BLOCK}u;`);
    emit('  for (var blk = 0u; blk < blocks; blk++) {');
    for (let j = 0; j < C; j++) emit(`    let s_${j} = packed_scale(w_${j}, blk);`);
    emit(`    let k_end = min(params.inner, blk * ${BLOCK}u + ${BLOCK}u);`);
    emit(`    for (var k = blk * ${BLOCK}u; k < k_end; k += 4u) {`);
    step('      ', 'k');
    emit('    }');
    emit('  }');
  } else {
    emit('  for (var n = 0u; n < params.inner; n += 4u) {');
    step('    ', 'n');
    emit('  }');
  }

  // Stores row by row in a loop that shifts the accumulators up (unrolled stores would be as much
  // code as the main loop; lavapipe compiles each variant for seconds).
  emit(`  let store_rows = select(0u, min(${R}u, params.m - row0), row0 < params.m);`);
  emit('  let add = params.accumulate != 0u;');
  emit('  for (var r = 0u; r < store_rows; r++) {');
  emit('    let at = params.c_offset + (row0 + r) * params.c_row + col0;');
  for (let j = 0; j < C; j++) {
    emit(
      `    if (col0 + ${j}u < params.n) { out[at + ${j}u] = select(acc_0_${j}, out[at + ${j}u] + acc_0_${j}, add); }`,
    );
  }
  for (let r = 0; r + 1 < R; r++) {
    for (let j = 0; j < C; j++) emit(`    acc_${r}_${j} = acc_${r + 1}_${j};`);
  }
  emit('  }');

  const header: string[] = [];
  if (subgroups) header.push('enable subgroups;');
  header.push(
    `@group(0) @binding(0) var<storage, read> a: array<${shape.vectorA ? 'vec4<f32>' : 'f32'}>;`,
    '@group(0) @binding(1) var<storage, read> w: array<u32>;',
    '@group(0) @binding(2) var<storage, read_write> out: array<f32>;',
    uniformStruct(PACKED_TILE_FIELDS),
    '@group(0) @binding(3) var<uniform> params: Params;',
    packedDecoderWgsl(format),
  );
  return [
    ...header,
    `@compute @workgroup_size(${lanesN}, ${lanesM}, 1)`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,',
    `        @builtin(num_workgroups) nwg: vec3u${subgroups ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {`,
    ...lines,
    '}',
  ].join('\n');
}
