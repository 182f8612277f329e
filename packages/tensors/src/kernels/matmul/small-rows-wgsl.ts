import type { UniformField } from '../../device/uniforms.js';
import { uniformStruct } from '../../device/uniforms.js';

/**
 * The shape of one small-M matmul kernel (decoding: one to a few rows against a weight). Every
 * field changes the WGSL and so belongs in the pipeline key.
 */
export interface SmallRowsKernelShape {
  /** 'nt': b holds [N, K] (a weight with transposeB); 'nn': b holds [K, N]. */
  layout: 'nt' | 'nn';
  /** Rows of a computed per workgroup, a power of two; rows past M are clamped, not stored. */
  rows: number;
  /** Output columns per workgroup (a multiple of 4). */
  cols: number;
  /** Invocations per workgroup; they split K. A power of two. */
  lanes: number;
  /** Reduce the lanes' partial sums with subgroupAdd (the workgroup is one subgroup). */
  subgroups: boolean;
  /** a (and b for 'nt') read as vec4 along K: K % 4 == 0. */
  vectorK: boolean;
  /** b read as vec4 along N ('nn' only): N % 4 == 0 and the column offset too. */
  vectorN: boolean;
  bias: boolean;
  /** A `residual` tensor laid out like the output is added in the epilogue. */
  residual: boolean;
  /** Storage type of every operand, the bias and the output (computed in f32 either way). */
  dtype: 'f32' | 'f16';
}

export function smallRowsKey(shape: SmallRowsKernelShape): string {
  return [
    'small',
    shape.layout,
    `${shape.rows}x${shape.cols}x${shape.lanes}`,
    shape.subgroups ? 'sg' : 'wg',
    shape.vectorK ? 'k4' : 'k1',
    shape.vectorN ? 'n4' : 'n1',
    shape.bias ? 'bias' : 'nobias',
    ...(shape.residual ? ['residual'] : []),
    shape.dtype,
  ].join(':');
}

/**
 * Parameters of one launch. Offsets and strides are in load units of the operand (vec4s where it
 * is read as vec4, elements otherwise); the output and bias in elements.
 *   a row r, step s:       a[a_offset + r * a_row + s]
 *   'nt' b column n, step s: b[b_offset + n * b_row + s]
 *   'nn' b row k, column n:  b[b_offset + k * b_row + n (/ 4)]
 */
export const SMALL_ROWS_FIELDS: UniformField[] = [
  { name: 'm', type: 'u32' },
  { name: 'n', type: 'u32' },
  /** Steps along K the lanes share out: K / 4 with vectorK, K otherwise. */
  { name: 'steps', type: 'u32' },
  { name: 'blocks', type: 'u32' },
  { name: 'a_offset', type: 'u32' },
  { name: 'a_row', type: 'u32' },
  { name: 'b_offset', type: 'u32' },
  { name: 'b_row', type: 'u32' },
  { name: 'c_offset', type: 'u32' },
  { name: 'c_row', type: 'u32' },
  { name: 'bias_offset', type: 'u32' },
  /** Element offset of the residual's first value (rows c_row apart, like the output). */
  { name: 'r_offset', type: 'u32' },
];

/**
 * A bandwidth-bound product of a few rows: each workgroup computes `cols` output columns for
 * every row, its lanes split K (lane l takes steps l, l + lanes, ...), each lane accumulates
 * rows x cols partial sums in registers, and the lanes' sums are added with subgroupAdd or in
 * workgroup memory. Every value of b is read once; no packing, no tile of rows wasted at M = 1.
 */
export function smallRowsSource(shape: SmallRowsKernelShape): string {
  const { rows: R, cols: C, lanes: W, layout, vectorK, vectorN } = shape;
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  const widen = (value: string, vector: boolean) =>
    shape.dtype === 'f32' ? value : vector ? `vec4f(${value})` : `f32(${value})`;

  emit('  let block = wid.y * nwg.x + wid.x;');
  emit('  if (block >= params.blocks) { return; }');
  emit(`  let col0 = block * ${C}u;`);
  emit('  let last_row = params.m - 1u;');
  emit('  let last_col = params.n - 1u;');
  for (let r = 0; r < R; r++) {
    emit(`  let a_at_${r} = params.a_offset + min(${r}u, last_row) * params.a_row;`);
  }
  if (layout === 'nt') {
    for (let j = 0; j < C; j++) {
      emit(`  let b_at_${j} = params.b_offset + min(col0 + ${j}u, last_col) * params.b_row;`);
    }
  } else if (vectorN) {
    // Whole vec4s of columns: the launch has n % 4 == 0, so clamping a vec4 clamps its columns.
    for (let q = 0; q < C / 4; q++) {
      emit(`  let b_col_${q} = params.b_offset + min(col0 / 4u + ${q}u, last_col / 4u);`);
    }
  } else {
    for (let j = 0; j < C; j++) emit(`  let b_col_${j} = params.b_offset + min(col0 + ${j}u, last_col);`);
  }
  for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`  var acc_${r}_${j} = 0.0;`);

  emit(`  for (var s = lid.x; s < params.steps; s += ${W}u) {`);
  for (let r = 0; r < R; r++) emit(`    let a_${r} = ${widen(`a[a_at_${r} + s]`, vectorK)};`);
  const parts = vectorK ? ['x', 'y', 'z', 'w'] : [''];
  const part = (value: string, i: number) => (vectorK ? `${value}.${parts[i]}` : value);
  if (layout === 'nt') {
    // One chain of fmas per accumulator and step, as in the tiled kernel.
    for (let j = 0; j < C; j++) emit(`    let b_${j} = ${widen(`b[b_at_${j} + s]`, vectorK)};`);
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) {
        let sum = `acc_${r}_${j}`;
        for (let i = 0; i < parts.length; i++)
          sum = `fma(${part(`a_${r}`, i)}, ${part(`b_${j}`, i)}, ${sum})`;
        emit(`    acc_${r}_${j} = ${sum};`);
      }
    }
  } else {
    // Rows k = s * 4 + i (vectorK) or k = s of b, read along N.
    const sums: string[][] = Array.from({ length: R }, (_, r) =>
      Array.from({ length: C }, (_, j) => `acc_${r}_${j}`),
    );
    emit(`    let k0 = s * ${vectorK ? 4 : 1}u;`);
    for (let i = 0; i < parts.length; i++) {
      emit(`    let b_row_${i} = (k0 + ${i}u) * params.b_row;`);
      if (vectorN) {
        for (let q = 0; q < C / 4; q++)
          emit(`    let b_${i}_${q} = ${widen(`b[b_row_${i} + b_col_${q}]`, true)};`);
      } else {
        for (let j = 0; j < C; j++)
          emit(`    let b_${i}_${j} = ${widen(`b[b_row_${i} + b_col_${j}]`, false)};`);
      }
      for (let r = 0; r < R; r++) {
        for (let j = 0; j < C; j++) {
          const value = vectorN ? `b_${i}_${Math.floor(j / 4)}.${'xyzw'[j % 4]}` : `b_${i}_${j}`;
          sums[r][j] = `fma(${part(`a_${r}`, i)}, ${value}, ${sums[r][j]})`;
        }
      }
    }
    for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`    acc_${r}_${j} = ${sums[r][j]};`);
  }
  emit('  }');

  const cast = (value: string) => (shape.dtype === 'f16' ? `f16(${value})` : value);
  const store = (r: number, j: number, total: string) => {
    const bias = shape.bias ? ` + ${widen(`bias[params.bias_offset + col0 + ${j}u]`, false)}` : '';
    const residual = shape.residual
      ? ` + ${widen(`residual[params.r_offset + ${r}u * params.c_row + col0 + ${j}u]`, false)}`
      : '';
    return `out[params.c_offset + ${r}u * params.c_row + col0 + ${j}u] = ${cast(`${total}${bias}${residual}`)};`;
  };
  const inside = (r: number, j: number) => `${r}u < params.m && col0 + ${j}u < params.n`;
  let helpers = '';
  if (shape.subgroups) {
    // Every lane gets every total; lane t % lanes stores output t, so the stores spread out.
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) {
        const t = r * C + j;
        emit(`  let total_${r}_${j} = subgroupAdd(acc_${r}_${j});`);
        emit(`  if (lid.x == ${t % W}u && ${inside(r, j)}) { ${store(r, j, `total_${r}_${j}`)} }`);
      }
    }
  } else {
    // Partial sums in workgroup memory, output t at partial[t * lanes + lane], halved lanes per pass.
    const count = R * C;
    helpers = `var<workgroup> partial: array<f32, ${count * W}>;`;
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) emit(`  partial[${(r * C + j) * W}u + lid.x] = acc_${r}_${j};`);
    }
    emit('  workgroupBarrier();');
    emit(`  for (var stride = ${W / 2}u; stride > 0u; stride /= 2u) {`);
    emit('    if (lid.x < stride) {');
    emit(`      for (var t = 0u; t < ${count}u; t++) {`);
    emit(`        partial[t * ${W}u + lid.x] += partial[t * ${W}u + lid.x + stride];`);
    emit('      }');
    emit('    }');
    emit('    workgroupBarrier();');
    emit('  }');
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) {
        const t = r * C + j;
        emit(`  if (lid.x == ${t % W}u && ${inside(r, j)}) { ${store(r, j, `partial[${t * W}u]`)} }`);
      }
    }
  }

  const element = (vector: boolean) => (vector ? `vec4<${shape.dtype}>` : shape.dtype);
  const storage = [
    { name: 'a', type: element(vectorK), access: 'read' },
    { name: 'b', type: element(layout === 'nt' ? vectorK : vectorN), access: 'read' },
    ...(shape.bias ? [{ name: 'bias', type: shape.dtype, access: 'read' }] : []),
    ...(shape.residual ? [{ name: 'residual', type: shape.dtype, access: 'read' }] : []),
    { name: 'out', type: shape.dtype, access: 'read_write' },
  ];
  const header: string[] = [];
  if (shape.dtype === 'f16') header.push('enable f16;');
  if (shape.subgroups) header.push('enable subgroups;');
  storage.forEach((s, i) => {
    header.push(`@group(0) @binding(${i}) var<storage, ${s.access}> ${s.name}: array<${s.type}>;`);
  });
  header.push(uniformStruct(SMALL_ROWS_FIELDS));
  header.push(`@group(0) @binding(${storage.length}) var<uniform> params: Params;`);
  if (helpers) header.push(helpers);
  return [
    ...header,
    `@compute @workgroup_size(${W}, 1, 1)`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,',
    '        @builtin(num_workgroups) nwg: vec3u) {',
    ...lines,
    '}',
  ].join('\n');
}
