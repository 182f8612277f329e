import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import type { UniformField } from '../../device/uniforms.js';
import type { BufferRange } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';
import type { PackedFormat } from './formats.js';
import { packedDecoderWgsl } from './packed-decoders-wgsl.js';

/*
 * x W^T for a few rows of x (decoding a token, a prompt of one or two): the packed tiled kernel
 * computes 8 to 24 rows per tile, so at one row most of its multiplies are wasted. Here each
 * workgroup computes `cols` outputs for every row, its `lanes` splitting K by 32-value blocks
 * (each lane decodes a block's scale once per output), and their partial sums are added with
 * subgroupAdd where the workgroup is one subgroup, else in workgroup memory. f32 accumulation.
 * Selected by packedMatmul for at most `tuning.matmulSmallRowsMax` rows (the f32 matmul's
 * small-rows rule), with that class's lanes and columns (`matmulSmallRowsLanes`/`Cols`).
 */

export const PACKED_ROWVEC_FIELDS: UniformField[] = [
  { name: 'm', type: 'u32' },
  { name: 'n', type: 'u32' },
  { name: 'k', type: 'u32' },
  { name: 'blocks', type: 'u32' },
  { name: 'groups', type: 'u32' },
  { name: 'a_offset', type: 'u32' },
  { name: 'c_offset', type: 'u32' },
  { name: 'c_row', type: 'u32' },
  { name: 'row_bytes', type: 'u32' },
];

export interface PackedRowvecShape {
  format: PackedFormat;
  /** Rows of x, all computed by every workgroup. */
  rows: number;
  lanes: number;
  cols: number;
  subgroups: boolean;
}

export interface RowvecLaunch {
  /** x [m, K] f32 from element a_offset. */
  a: BufferRange;
  /** One chunk of the weight: rows 0 .. n - 1 of it, `rowBytes` bytes each. */
  w: BufferRange;
  /** out[c_offset + r * c_row + col]. */
  out: BufferRange;
  m: number;
  n: number;
  inner: number;
  aOffset: number;
  cOffset: number;
  cRow: number;
  rowBytes: number;
}

export function launchRowvec(device: Device, shape: PackedRowvecShape, job: RowvecLaunch): void {
  const groups = Math.ceil(job.n / shape.cols);
  device.dispatch({
    key: `${KERNELS.packedMatmul}:rowvec:${shape.format}:${shape.rows}:${shape.lanes}x${shape.cols}:${shape.subgroups ? 'sg' : 'wg'}`,
    source: () => packedRowvecSource(shape),
    bindings: [job.a, job.w, job.out],
    uniforms: {
      fields: PACKED_ROWVEC_FIELDS,
      values: {
        m: job.m,
        n: job.n,
        k: job.inner,
        blocks: Math.ceil(job.inner / 32),
        groups,
        a_offset: job.aOffset,
        c_offset: job.cOffset,
        c_row: job.cRow,
        row_bytes: job.rowBytes,
      },
    },
    workgroups: grid(groups, device.maxWorkgroupsPerDimension),
  });
}

export function packedRowvecSource(shape: PackedRowvecShape): string {
  const { rows: R, lanes: L, cols: C, subgroups } = shape;
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  emit('  let group = flat_workgroup(wid, nwg);');
  emit('  if (group >= params.groups) { return; }');
  emit(`  let col0 = group * ${C}u;`);
  for (let j = 0; j < C; j++) emit(`  let row_${j} = min(col0 + ${j}u, params.n - 1u) * params.row_bytes;`);
  for (let r = 0; r < R; r++) {
    emit(`  let x_${r} = params.a_offset + min(${r}u, params.m - 1u) * params.k;`);
    for (let j = 0; j < C; j++) emit(`  var acc_${r}_${j} = 0.0;`);
  }
  emit(`  for (var blk = lid.x; blk < params.blocks; blk += ${L}u) {`);
  for (let j = 0; j < C; j++) emit(`    let scale_${j} = packed_scale(row_${j}, blk);`);
  // A half-precision row may end inside a block (K any size): quads past K are skipped, and the
  // values of a last partial quad past K meet zeros of x.
  emit('    let quads = min(8u, (params.k - blk * 32u + 3u) / 4u);');
  emit('    for (var q = 0u; q < quads; q++) {');
  emit('      let k = blk * 32u + q * 4u;');
  for (let r = 0; r < R; r++) emit(`      let a_${r} = load_x(x_${r}, k);`);
  for (let j = 0; j < C; j++) {
    emit(`      let b_${j} = packed_quad(row_${j}, k, scale_${j});`);
    for (let r = 0; r < R; r++) emit(`      acc_${r}_${j} += dot(a_${r}, b_${j});`);
  }
  emit('    }');
  emit('  }');
  const store = (r: number, j: number, total: string) =>
    `if (col0 + ${j}u < params.n && ${r}u < params.m) { out[params.c_offset + ${r}u * params.c_row + col0 + ${j}u] = ${total}; }`;
  if (subgroups) {
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) {
        emit(`  let sum_${r}_${j} = subgroupAdd(acc_${r}_${j});`);
        emit(`  if (lid.x == ${(r * C + j) % L}u) { ${store(r, j, `sum_${r}_${j}`)} }`);
      }
    }
  } else {
    for (let r = 0; r < R; r++)
      for (let j = 0; j < C; j++) emit(`  partial[${(r * C + j) * L}u + lid.x] = acc_${r}_${j};`);
    emit('  workgroupBarrier();');
    emit(`  for (var t = lid.x; t < ${R * C}u; t += ${L}u) {`);
    emit(`    let r = t / ${C}u;`);
    emit(`    let col = col0 + t % ${C}u;`);
    emit('    var total = 0.0;');
    emit(`    for (var i = 0u; i < ${L}u; i++) { total += partial[t * ${L}u + i]; }`);
    emit(
      '    if (col < params.n && r < params.m) { out[params.c_offset + r * params.c_row + col] = total; }',
    );
    emit('  }');
  }
  const helpers = [
    packedDecoderWgsl(shape.format),
    // Four values of x from element `at` + k, zero past K.
    `fn load_x(at: u32, k: u32) -> vec4<f32> {
  let valid = vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.k);
  let i = vec4<u32>(at + k) + vec4<u32>(0u, 1u, 2u, 3u);
  return select(vec4<f32>(0.0), vec4<f32>(x[i.x], x[min(i.y, arrayLength(&x) - 1u)], x[min(i.z, arrayLength(&x) - 1u)], x[min(i.w, arrayLength(&x) - 1u)]), valid);
}`,
    subgroups ? '' : `var<workgroup> partial: array<f32, ${R * C * L}>;`,
  ];
  const source = kernelSource({
    storage: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'w', type: 'u32', access: 'read' },
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: PACKED_ROWVEC_FIELDS,
    workgroupSize: L,
    helpers: helpers.join('\n'),
    body: lines.join('\n'),
  });
  return subgroups ? `enable subgroups;\n${source}` : source;
}
