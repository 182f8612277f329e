import { type UniformField, uniformStruct } from '../../device/uniforms.js';

/**
 * How one operand is read in place (no packing copy): element (row, k) of batch entry `base` is
 * at base + row * row_stride + k * k_stride, where `row` is an output row of A or an output
 * column of B. `vector` operands have k_stride 1 and every offset, row stride and batch stride a
 * multiple of 4 with K % 4 == 0: they are bound as array<vec4<T>> and read four k at once
 * (vec4<f16> for f16 tensors). Otherwise each k is a scalar load, laid out so that neighbouring
 * lanes read neighbouring rows when rows are the contiguous axis (a transposed operand).
 */
export interface TiledOperand {
  vector: boolean;
  /** k is the contiguous axis (k_stride 1): neighbouring lanes stage neighbouring k of one row. */
  kContiguous: boolean;
}

/** One tiled matmul pipeline; everything here changes the WGSL and so is in the pipeline key. */
export interface TiledShape {
  /**
   * 'workgroup': a 16 x 16 workgroup computes a 64 x 64 (or 128 x 128) output tile, 4 x 4 (8 x 8)
   * per invocation, from 16-k panels of A and B staged in workgroup memory (the classic GPU design).
   * 'subgroup': a workgroup of `lanes` invocations that is one subgroup computes `rows` rows x
   * 4 * lanes columns; lane l reads A row l % rows in place and subgroupBroadcast hands each row to
   * the other lanes, so A is never staged in workgroup memory and every B value is read once.
   */
  sharing: 'workgroup' | 'subgroup';
  /**
   * Workgroup variant only: outputs per invocation along each axis, 4 (64 x 64 tiles) or 8
   * (128 x 128 tiles, 16 KiB of workgroup memory: large products on adapters that allow it).
   */
  perThread: 4 | 8;
  /** Subgroup variant only: lanes per workgroup (<= the adapter's subgroupMinSize) and rows per tile (<= lanes). */
  lanes: number;
  rows: number;
  /** Storage type of a, b, bias and the output; always accumulated in f32. */
  dtype: 'f32' | 'f16';
  a: TiledOperand;
  b: TiledOperand;
  bias: boolean;
}

/** Output rows x columns of one workgroup. */
export function tiledTile(shape: TiledShape): { rows: number; cols: number } {
  if (shape.sharing === 'workgroup') return { rows: 16 * shape.perThread, cols: 16 * shape.perThread };
  return { rows: shape.rows, cols: 4 * shape.lanes };
}

export function tiledKey(shape: TiledShape): string {
  const operand = (o: TiledOperand) => (o.vector ? 'v4' : o.kContiguous ? 'sk' : 'sr');
  return [
    shape.sharing,
    shape.sharing === 'subgroup' ? `${shape.lanes}x${shape.rows}` : `t${16 * shape.perThread}`,
    shape.dtype,
    operand(shape.a),
    operand(shape.b),
    shape.bias ? 'bias' : 'nobias',
  ].join(':');
}

/** Parameters of one launch (offsets and strides in elements; batch strides per collapsed batch dim). */
export const TILED_FIELDS: UniformField[] = [
  { name: 'm', type: 'u32' },
  { name: 'n', type: 'u32' },
  { name: 'k', type: 'u32' },
  { name: 'tiles_n', type: 'u32' },
  { name: 'tiles_m', type: 'u32' },
  { name: 'tiles', type: 'u32' },
  { name: 'a_offset', type: 'u32' },
  { name: 'a_row', type: 'u32' },
  { name: 'a_k', type: 'u32' },
  { name: 'b_offset', type: 'u32' },
  { name: 'b_row', type: 'u32' },
  { name: 'b_k', type: 'u32' },
  { name: 'batch_rank', type: 'u32' },
  { name: 'batch_shape', type: 'array<vec4u,2>' },
  { name: 'batch_a', type: 'array<vec4u,2>' },
  { name: 'batch_b', type: 'array<vec4u,2>' },
  { name: 'batch_c', type: 'array<vec4u,2>' },
];

/** WGSL returning the vec4f of k .. k + 3 of `row` (zeros past K) for operand `name`. */
export function loader(name: 'a' | 'b', operand: TiledOperand): string {
  if (operand.vector) {
    return `fn load_${name}(base: u32, row: u32, k: u32) -> vec4f {
  if (k >= params.k) { return vec4f(0.0); }
  return vec4f(${name}[(base + row * params.${name}_row + k) / 4u]);
}`;
  }
  const component = (i: number) =>
    `select(0.0, f32(${name}[base + row * params.${name}_row + min(k + ${i}u, last_k) * params.${name}_k]), k + ${i}u < params.k)`;
  return `fn load_${name}(base: u32, row: u32, k: u32) -> vec4f {
  if (k >= params.k) { return vec4f(0.0); }
  let last_k = params.k - 1u;
  return vec4f(${[0, 1, 2, 3].map(component).join(',\n    ')});
}`;
}

/** Decodes the tile and batch entry of this workgroup into tile_m, tile_n, a_base, b_base, c_base. */
export const PROLOGUE = `  let tile = wid.y * nwg.x + wid.x;
  if (tile >= params.tiles) { return; }
  let tile_n = tile % params.tiles_n;
  var rest = tile / params.tiles_n;
  let tile_m = rest % params.tiles_m;
  rest = rest / params.tiles_m;
  var a_base = params.a_offset;
  var b_base = params.b_offset;
  var c_base = 0u;
  for (var d = params.batch_rank; d > 0u; d--) {
    let i = (d - 1u) / 4u;
    let j = (d - 1u) % 4u;
    let extent = params.batch_shape[i][j];
    let coordinate = rest % extent;
    rest = rest / extent;
    a_base += coordinate * params.batch_a[i][j];
    b_base += coordinate * params.batch_b[i][j];
    c_base += coordinate * params.batch_c[i][j];
  }
  let last_row = params.m - 1u;
  let last_col = params.n - 1u;`;

/** Stores acc_r_c (+ bias) for rows row0 + r * row_step and columns col0 + c. */
function epilogue(shape: TiledShape, rows: number, rowStep: number): string {
  const lines: string[] = [];
  const cast = (value: string) => (shape.dtype === 'f16' ? `f16(${value})` : value);
  for (let c = 0; c < 4; c++) {
    lines.push(
      shape.bias ? `  let bias_${c} = f32(bias[min(col0 + ${c}u, last_col)]);` : `  let bias_${c} = 0.0;`,
    );
  }
  for (let r = 0; r < rows; r++) {
    lines.push(`  if (row0 + ${r * rowStep}u < params.m) {`);
    lines.push(`    let at = c_base + (row0 + ${r * rowStep}u) * params.n + col0;`);
    for (let c = 0; c < 4; c++) {
      lines.push(
        `    if (col0 + ${c}u < params.n) { out[at + ${c}u] = ${cast(`acc_${r}_${c} + bias_${c}`)}; }`,
      );
    }
    lines.push('  }');
  }
  return lines.join('\n');
}

function workgroupBody(shape: TiledShape): string {
  const T = shape.perThread;
  const tile = 16 * T;
  const lines: string[] = [PROLOGUE];
  const emit = (line: string) => lines.push(line);
  emit('  let flat = lid.y * 16u + lid.x;');
  // A panel is `tile` rows x 16 k: 4 * tile vec4s, T / 4 per invocation. Operands whose k is
  // contiguous give neighbouring lanes neighbouring k of one row; the others neighbouring rows
  // (coalesced loads either way).
  const stages = T / 4;
  for (const name of ['a', 'b'] as const) {
    const operand = shape[name];
    const tileStart = name === 'a' ? `tile_m * ${tile}u` : `tile_n * ${tile}u`;
    const last = name === 'a' ? 'last_row' : 'last_col';
    for (let s = 0; s < stages; s++) {
      const at = `${name}_${s}`;
      emit(`  let ${at}_index = flat + ${256 * s}u;`);
      if (operand.kContiguous) {
        emit(`  let ${at}_row = ${at}_index / 4u;`);
        emit(`  let ${at}_k = (${at}_index % 4u) * 4u;`);
      } else {
        emit(`  let ${at}_row = ${at}_index % ${tile}u;`);
        emit(`  let ${at}_k = (${at}_index / ${tile}u) * 4u;`);
      }
      emit(`  let ${at}_load_row = min(${tileStart} + ${at}_row, ${last});`);
      emit(`  let ${at}_slot = ${at}_row * 4u + ${at}_k / 4u;`);
    }
  }
  for (let r = 0; r < T; r++) for (let c = 0; c < T; c++) emit(`  var acc_${r}_${c} = 0.0;`);
  emit('  for (var k0 = 0u; k0 < params.k; k0 += 16u) {');
  emit('    workgroupBarrier();');
  for (const name of ['a', 'b'] as const) {
    for (let s = 0; s < stages; s++) {
      const at = `${name}_${s}`;
      emit(`    panel_${name}[${at}_slot] = load_${name}(${name}_base, ${at}_load_row, k0 + ${at}_k);`);
    }
  }
  emit('    workgroupBarrier();');
  emit('    for (var q = 0u; q < 4u; q++) {');
  // Rows lid.y + 16 r and columns lid.x + 16 c: neighbouring lanes read neighbouring panel rows.
  for (let r = 0; r < T; r++) emit(`      let a_${r} = panel_a[(lid.y + ${16 * r}u) * 4u + q];`);
  for (let c = 0; c < T; c++) emit(`      let b_${c} = panel_b[(lid.x + ${16 * c}u) * 4u + q];`);
  for (let r = 0; r < T; r++) {
    for (let c = 0; c < T; c++) emit(`      acc_${r}_${c} += dot(a_${r}, b_${c});`);
  }
  emit('    }');
  emit('  }');
  const cast = (value: string) => (shape.dtype === 'f16' ? `f16(${value})` : value);
  emit(`  let row0 = tile_m * ${tile}u + lid.y;`);
  emit(`  let col0 = tile_n * ${tile}u + lid.x;`);
  for (let c = 0; c < T; c++) {
    emit(
      shape.bias
        ? `  let bias_${c} = f32(bias[min(col0 + ${16 * c}u, last_col)]);`
        : `  let bias_${c} = 0.0;`,
    );
  }
  for (let r = 0; r < T; r++) {
    emit(`  if (row0 + ${16 * r}u < params.m) {`);
    emit(`    let at = c_base + (row0 + ${16 * r}u) * params.n + col0;`);
    for (let c = 0; c < T; c++) {
      emit(
        `    if (col0 + ${16 * c}u < params.n) { out[at + ${16 * c}u] = ${cast(`acc_${r}_${c} + bias_${c}`)}; }`,
      );
    }
    emit('  }');
  }
  return lines.join('\n');
}

function subgroupBody(shape: TiledShape): string {
  const { rows: R } = shape;
  const lines: string[] = [PROLOGUE];
  const emit = (line: string) => lines.push(line);
  emit(`  let row0 = tile_m * ${R}u;`);
  emit(`  let col0 = tile_n * ${4 * shape.lanes}u + lid.x * 4u;`);
  emit(`  let my_row = min(row0 + lid.x % ${R}u, last_row);`);
  for (let c = 0; c < 4; c++) emit(`  let col_${c} = min(col0 + ${c}u, last_col);`);
  for (let r = 0; r < R; r++) for (let c = 0; c < 4; c++) emit(`  var acc_${r}_${c} = 0.0;`);
  // The trip count is uniform over the workgroup, so subgroupBroadcast runs in uniform control flow.
  emit('  for (var k = 0u; k < params.k; k += 4u) {');
  emit('    let mine = load_a(a_base, my_row, k);');
  for (let c = 0; c < 4; c++) emit(`    let b_${c} = load_b(b_base, col_${c}, k);`);
  for (let r = 0; r < R; r++) {
    emit(`    let a_${r} = subgroupBroadcast(mine, ${r}u);`);
    for (let c = 0; c < 4; c++) emit(`    acc_${r}_${c} += dot(a_${r}, b_${c});`);
  }
  emit('  }');
  lines.push(epilogue(shape, R, 1));
  return lines.join('\n');
}

/**
 * A tiled matmul for GPUs that reads both operands in place, in their own dtype (f32, or f16
 * through shader-f16 with f32 accumulation), with any row and k strides: row-major, transposed,
 * batched. Output [batch, M, N] row-major, overwritten, plus an optional bias [N].
 */
export function tiledSource(shape: TiledShape): string {
  const t = shape.dtype;
  const header: string[] = [];
  if (t === 'f16') header.push('enable f16;');
  if (shape.sharing === 'subgroup') header.push('enable subgroups;');
  const bindings = [
    { name: 'a', type: shape.a.vector ? `vec4<${t}>` : t, access: 'read' },
    { name: 'b', type: shape.b.vector ? `vec4<${t}>` : t, access: 'read' },
    ...(shape.bias ? [{ name: 'bias', type: t, access: 'read' }] : []),
    { name: 'out', type: t, access: 'read_write' },
  ];
  bindings.forEach((s, i) => {
    header.push(`@group(0) @binding(${i}) var<storage, ${s.access}> ${s.name}: array<${s.type}>;`);
  });
  header.push(uniformStruct(TILED_FIELDS));
  header.push(`@group(0) @binding(${bindings.length}) var<uniform> params: Params;`);
  header.push(loader('a', shape.a), loader('b', shape.b));
  if (shape.sharing === 'workgroup') {
    const slots = 64 * shape.perThread;
    header.push(
      `var<workgroup> panel_a: array<vec4f, ${slots}>;`,
      `var<workgroup> panel_b: array<vec4f, ${slots}>;`,
    );
  }
  const size = shape.sharing === 'workgroup' ? '16, 16, 1' : `${shape.lanes}, 1, 1`;
  return [
    ...header,
    `@compute @workgroup_size(${size})`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {',
    shape.sharing === 'workgroup' ? workgroupBody(shape) : subgroupBody(shape),
    '}',
  ].join('\n');
}
