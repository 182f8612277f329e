import { type UniformField, uniformStruct } from '../../device/uniforms.js';
import type { DType } from '../../tensor/dtype.js';
import { kernelSource } from '../shared/wgsl.js';

/**
 * The shape of one matmul kernel: what one invocation and one workgroup compute, and how the
 * A rows reach the lanes. Everything here changes the WGSL and so belongs in the pipeline key.
 */
export interface MatmulKernelShape {
  /** Output rows one invocation accumulates (register tile height). */
  rows: number;
  /** Output columns one invocation accumulates (register tile width). */
  cols: number;
  /** Invocations per workgroup along N and along M. */
  lanesN: number;
  lanesM: number;
  /**
   * Lane l loads rows l, l + lanesN, ... of the tile and subgroupBroadcast hands each row to the
   * other lanes (needs lanesM == 1 and a subgroup holding the whole workgroup); otherwise every
   * invocation loads all of its rows itself.
   */
  subgroups: boolean;
  bias: boolean;
  /** Add the tile into the output instead of overwriting it (a later K segment of the product). */
  accumulate: boolean;
  /** Output and bias written and read as vec4 (see emitVectorEpilogue). */
  vectorStore: boolean;
  /** Storage type of the output and bias (computed in f32 either way). */
  outType: 'f32' | 'f16';
  /**
   * The operand is read in place from a layout contiguous along its rows, not along K (A stored
   * [K, M] for a^T, B stored [K, N]): each load is a vec4 of four rows at one k (see
   * OUTER_OPERAND). Needs the rows of one invocation (`rows` for A, `cols` for B) a multiple of
   * 4, and K a multiple of 4.
   */
  aOuter?: boolean;
  bOuter?: boolean;
  /** The product is multiplied by params.alpha in the epilogue (MATMUL_SCALED_FIELDS). */
  scaled?: boolean;
  /** A tensor of the output's layout is added in the epilogue (bound before the output). */
  residual?: boolean;
  /**
   * A low-rank product lr_alpha * L op(R) is added before the store (LoRA's s (x A^T) B^T on the
   * base product, or dh A on dy W): L [M, r] row-major, R [N, r] ('rows') or [r, N] ('outer'),
   * r a multiple of 4; bound after the residual. See emitLowRank.
   */
  lowRank?: 'rows' | 'outer';
}

/** Output rows covered by one workgroup (the height of a packed A panel). */
export function tileRows(shape: MatmulKernelShape): number {
  return shape.rows * shape.lanesM;
}

/** Output columns covered by one workgroup (the width of a packed B panel). */
export function tileCols(shape: MatmulKernelShape): number {
  return shape.cols * shape.lanesN;
}

export function matmulKey(shape: MatmulKernelShape): string {
  return [
    shape.subgroups ? 'sg' : 'lanes',
    `${shape.rows}x${shape.cols}`,
    `${shape.lanesN}x${shape.lanesM}`,
    shape.bias ? 'bias' : 'nobias',
    ...(shape.accumulate ? ['add'] : []),
    shape.vectorStore ? 'store4' : 'store1',
    shape.outType,
    ...(shape.aOuter ? ['aT'] : []),
    ...(shape.bOuter ? ['bT'] : []),
    ...(shape.scaled ? ['alpha'] : []),
    ...(shape.residual ? ['res'] : []),
    ...(shape.lowRank ? [`lr${shape.lowRank === 'outer' ? 'T' : ''}`] : []),
  ].join(':');
}

/**
 * Operand addressing, in vec4 units, shared by both operands: the vec4 holding k = 4 * k4 .. +3
 * of matrix row `row` (an output row of A, or an output column of B) lies at
 *   offset + (row / tile) * panel + (row % tile) * line + k4 * step
 * which reads a row-major matrix directly (panel = tile * K4, line = K4, step = 1) or one packed
 * in panels of `tile` rows (panel = K4 * tile, line = 1, step = tile).
 *
 * An operand read "outer" (aOuter/bOuter: a^T stored [K, M], b stored [K, N]) instead holds the
 * vec4 of rows 4g .. 4g+3 at one k at offset + k * line + g (line = the row length of the stored
 * matrix in vec4s; panel and step unused).
 */
const OPERAND_FIELDS = (name: string): UniformField[] => [
  { name: `${name}_offset`, type: 'u32' },
  { name: `${name}_panel`, type: 'u32' },
  { name: `${name}_line`, type: 'u32' },
  { name: `${name}_step`, type: 'u32' },
];

/**
 * Parameters of one launch. The batch (after collapsing, at most MAX_RANK dimensions, none when
 * it folds into M) is decoded from the workgroup index with per-operand strides in vec4s (output
 * strides in elements), 0 where an operand is broadcast.
 */
export const MATMUL_FIELDS: UniformField[] = [
  { name: 'm', type: 'u32' },
  { name: 'n', type: 'u32' },
  { name: 'k4', type: 'u32' },
  { name: 'tiles', type: 'u32' },
  { name: 'tiles_n', type: 'u32' },
  { name: 'tiles_m', type: 'u32' },
  // 1: row tiles vary fastest (b is the larger operand: each b panel is read once, a stays cached).
  { name: 'm_first', type: 'u32' },
  ...OPERAND_FIELDS('a'),
  ...OPERAND_FIELDS('b'),
  { name: 'c_offset', type: 'u32' },
  { name: 'c_row', type: 'u32' },
  { name: 'bias_offset', type: 'u32' },
  { name: 'batch_rank', type: 'u32' },
  { name: 'batch_shape', type: 'array<vec4u,2>' },
  { name: 'batch_a', type: 'array<vec4u,2>' },
  { name: 'batch_b', type: 'array<vec4u,2>' },
  { name: 'batch_c', type: 'array<vec4u,2>' },
];

/** MATMUL_FIELDS plus the factor of a scaled product (shape.scaled). */
export const MATMUL_SCALED_FIELDS: UniformField[] = [...MATMUL_FIELDS, { name: 'alpha', type: 'f32' }];

/**
 * MATMUL_SCALED_FIELDS plus the low-rank term (shape.lowRank), offsets and lines in vec4s: L's
 * row r4 = lr_k4 vec4s long; R's line (outer: [r, N], one k's row of N / 4 vec4s).
 */
export const MATMUL_LOW_RANK_FIELDS: UniformField[] = [
  ...MATMUL_SCALED_FIELDS,
  { name: 'lr_a_offset', type: 'u32' },
  { name: 'lr_b_offset', type: 'u32' },
  { name: 'lr_b_line', type: 'u32' },
  { name: 'lr_k4', type: 'u32' },
  { name: 'lr_alpha', type: 'f32' },
];

/** The uniform layout of a kernel shape. */
export function matmulFields(shape: MatmulKernelShape): UniformField[] {
  if (shape.lowRank) return MATMUL_LOW_RANK_FIELDS;
  return shape.scaled ? MATMUL_SCALED_FIELDS : MATMUL_FIELDS;
}

/**
 * The matmul kernel. Each invocation accumulates rows x cols outputs in registers, four k per
 * loop iteration from one vec4 of each operand row; no workgroup memory (on CPU rasterisers it
 * costs more than it saves). Workgroups are numbered flat over (row and column tiles, batch) so
 * any count fits under the per-dimension limit through grid().
 */
export function matmulSource(shape: MatmulKernelShape): string {
  const { rows: R, cols: C, lanesN, subgroups } = shape;
  const tileM = tileRows(shape);
  const tileN = tileCols(shape);
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);

  emit('  let tile = wid.y * nwg.x + wid.x;');
  emit('  if (tile >= params.tiles) { return; }');
  // Consecutive workgroups share one operand tile and sweep the other operand, which should be
  // the smaller one so that it stays in cache (see m_first).
  emit('  let m_first = params.m_first != 0u;');
  emit('  let fast = select(params.tiles_n, params.tiles_m, m_first);');
  emit('  let slow = select(params.tiles_m, params.tiles_n, m_first);');
  emit('  let tile_fast = tile % fast;');
  emit('  var rest = tile / fast;');
  emit('  let tile_slow = rest % slow;');
  emit('  rest = rest / slow;');
  emit('  let tile_m = select(tile_slow, tile_fast, m_first);');
  emit('  let tile_n = select(tile_fast, tile_slow, m_first);');
  emit('  var a_base = params.a_offset;');
  emit('  var b_base = params.b_offset;');
  emit('  var c_base = params.c_offset;');
  emit('  for (var d = params.batch_rank; d > 0u; d--) {');
  emit('    let i = (d - 1u) / 4u;');
  emit('    let j = (d - 1u) % 4u;');
  emit('    let extent = params.batch_shape[i][j];');
  emit('    let coordinate = rest % extent;');
  emit('    rest = rest / extent;');
  emit('    a_base += coordinate * params.batch_a[i][j];');
  emit('    b_base += coordinate * params.batch_b[i][j];');
  emit('    c_base += coordinate * params.batch_c[i][j];');
  emit('  }');
  emit('  let last_row = params.m - 1u;');
  emit('  let last_col = params.n - 1u;');

  // Where this invocation's A rows start. Rows past the end are clamped (their results are not
  // stored), so the loop needs no bounds checks.
  // With subgroups the lanes share the A tile's loads: each loads R / lanesN vec4s of it and
  // subgroupBroadcast hands them round.
  const aShared = subgroups;
  const loads = aShared ? R / lanesN : R;
  const groups = R / 4;
  emit(`  let row0 = tile_m * ${tileM}u${subgroups ? '' : ` + lid.y * ${R}u`};`);
  if (shape.aOuter && aShared) {
    // The tile's R vec4s per k4 are (q, g): k + q, rows 4g .. 4g+3; lane l loads v = i * lanesN + l.
    for (let i = 0; i < loads; i++) {
      emit(`  let a_v_${i} = ${i * lanesN}u + lane;`);
      emit(
        `  let a_at_${i} = a_base + min(row0 + 4u * (a_v_${i} % ${groups}u), params.m - 4u) / 4u + (a_v_${i} / ${groups}u) * params.a_line;`,
      );
    }
  } else if (shape.aOuter) {
    // Groups of four rows; m is a multiple of 4, so a group is wholly inside or clamped to the last.
    for (let g = 0; g < groups; g++)
      emit(`  let a_at_${g} = a_base + min(row0 + ${4 * g}u, params.m - 4u) / 4u;`);
  } else {
    for (let i = 0; i < loads; i++) {
      const row = aShared ? `row0 + ${i * lanesN}u + lane` : `row0 + ${i}u`;
      emit(`  let a_row_${i} = min(${row}, last_row);`);
      emit(
        `  let a_at_${i} = a_base + (a_row_${i} / ${tileM}u) * params.a_panel + (a_row_${i} % ${tileM}u) * params.a_line;`,
      );
    }
  }
  emit(`  let col0 = tile_n * ${tileN}u + lid.x * ${C}u;`);
  for (let j = 0; j < C; j++) emit(`  let b_col_${j} = min(col0 + ${j}u, last_col);`);
  if (shape.bOuter) {
    for (let g = 0; g < C / 4; g++)
      emit(`  let b_at_${g} = b_base + min(col0 + ${4 * g}u, params.n - 4u) / 4u;`);
  } else {
    for (let j = 0; j < C; j++) {
      emit(
        `  let b_at_${j} = b_base + (b_col_${j} / ${tileN}u) * params.b_panel + (b_col_${j} % ${tileN}u) * params.b_line;`,
      );
    }
  }
  for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`  var acc_${r}_${j} = 0.0;`);

  const lane = ['x', 'y', 'z', 'w'];
  emit('  for (var k4 = 0u; k4 < params.k4; k4++) {');
  if (shape.aOuter && aShared) {
    emit('    let a_k = k4 * 4u * params.a_line;');
    for (let i = 0; i < loads; i++) emit(`    let a_${i} = a[a_at_${i} + a_k];`);
    for (let q = 0; q < 4; q++) {
      for (let g = 0; g < groups; g++) {
        const v = q * groups + g;
        emit(`    let a_${q}_${g} = subgroupBroadcast(a_${Math.floor(v / lanesN)}, ${v % lanesN}u);`);
      }
    }
  } else if (shape.aOuter) {
    emit('    let a_k = k4 * 4u * params.a_line;');
    for (let q = 0; q < 4; q++) {
      for (let g = 0; g < groups; g++)
        emit(`    let a_${q}_${g} = a[a_at_${g} + a_k + ${q}u * params.a_line];`);
    }
  } else {
    for (let i = 0; i < loads; i++) emit(`    let a_${i} = a[a_at_${i} + k4 * params.a_step];`);
  }
  if (shape.bOuter) {
    emit('    let b_k = k4 * 4u * params.b_line;');
    for (let q = 0; q < 4; q++) {
      for (let g = 0; g < C / 4; g++)
        emit(`    let b_${q}_${g} = b[b_at_${g} + b_k + ${q}u * params.b_line];`);
    }
  } else {
    for (let j = 0; j < C; j++) emit(`    let b_${j} = b[b_at_${j} + k4 * params.b_step];`);
  }
  // A(r, k + q) and B(j, k + q) as WGSL expressions.
  const aValue = (r: number, q: number) =>
    shape.aOuter
      ? `a_${q}_${Math.floor(r / 4)}.${lane[r % 4]}`
      : `${aShared ? `row_${r}` : `a_${r}`}.${lane[q]}`;
  const bValue = (j: number, q: number) =>
    shape.bOuter ? `b_${q}_${Math.floor(j / 4)}.${lane[j % 4]}` : `b_${j}.${lane[q]}`;
  for (let r = 0; r < R; r++) {
    if (aShared && !shape.aOuter) {
      emit(`    let row_${r} = subgroupBroadcast(a_${Math.floor(r / lanesN)}, ${r % lanesN}u);`);
    }
    for (let j = 0; j < C; j++) {
      // One chain of four fmas per accumulator and iteration: the loop writes each accumulator once.
      let sum = `acc_${r}_${j}`;
      for (let q = 0; q < 4; q++) sum = `fma(${aValue(r, q)}, ${bValue(j, q)}, ${sum})`;
      emit(`    acc_${r}_${j} = ${sum};`);
    }
  }
  emit('  }');
  if (shape.lowRank) emitLowRank(shape, emit);

  if (shape.vectorStore) emitVectorEpilogue(shape, emit);
  else emitScalarEpilogue(shape, emit);

  const storage: { name: string; type: string; access: 'read' | 'read_write' }[] = [
    { name: 'a', type: 'vec4<f32>', access: 'read' },
    { name: 'b', type: 'vec4<f32>', access: 'read' },
  ];
  const stored = shape.vectorStore ? `vec4<${shape.outType}>` : shape.outType;
  if (shape.bias) storage.push({ name: 'bias', type: stored, access: 'read' });
  if (shape.residual) storage.push({ name: 'residual', type: stored, access: 'read' });
  if (shape.lowRank) {
    storage.push({ name: 'lr_a', type: 'vec4<f32>', access: 'read' });
    storage.push({ name: 'lr_b', type: 'vec4<f32>', access: 'read' });
  }
  storage.push({ name: 'out', type: stored, access: 'read_write' });

  // Written out here rather than through kernelSource(): the subgroup variant needs the
  // subgroup_invocation_id builtin, which the shared prelude does not pass to main.
  const header: string[] = [];
  if (shape.outType === 'f16') header.push('enable f16;');
  if (aShared) header.push('enable subgroups;');
  storage.forEach((s, i) => {
    header.push(`@group(0) @binding(${i}) var<storage, ${s.access}> ${s.name}: array<${s.type}>;`);
  });
  header.push(uniformStruct(matmulFields(shape)));
  header.push(`@group(0) @binding(${storage.length}) var<uniform> params: Params;`);
  return [
    ...header,
    `@compute @workgroup_size(${shape.lanesN}, ${shape.lanesM}, 1)`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,',
    `        @builtin(num_workgroups) nwg: vec3u${aShared ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {`,
    ...lines,
    '}',
  ].join('\n');
}

/**
 * The low-rank term, after the main loop: the accumulators take the main product's factor first,
 * then lr_alpha * sum_k L(row, k) R(k, col) over r / 4 vec4 steps: L's rows clamped like the
 * main loop's and shared through subgroups where A's are, each invocation's own columns of R.
 */
function emitLowRank(shape: MatmulKernelShape, emit: (line: string) => void): void {
  const { rows: R, cols: C } = shape;
  const lane = ['x', 'y', 'z', 'w'];
  if (shape.scaled) {
    for (let r = 0; r < R; r++)
      for (let j = 0; j < C; j++) emit(`  acc_${r}_${j} = params.alpha * acc_${r}_${j};`);
  }
  // With subgroups the lanes share the tile's rows, as in the main loop: lane l loads rows l,
  // l + lanesN, ... and subgroupBroadcast hands them round (the trip count is uniform).
  const shared = shape.subgroups;
  const loads = shared ? R / shape.lanesN : R;
  for (let i = 0; i < loads; i++) {
    const row = shared ? `row0 + ${i * shape.lanesN}u + lane` : `row0 + ${i}u`;
    emit(`  let lr_row_${i} = params.lr_a_offset + min(${row}, last_row) * params.lr_k4;`);
  }
  emit('  for (var l4 = 0u; l4 < params.lr_k4; l4++) {');
  for (let i = 0; i < loads; i++) emit(`    let lr_load_${i} = lr_a[lr_row_${i} + l4];`);
  const bValue = (j: number, q: number) =>
    shape.lowRank === 'outer' ? `lr_b_${q}_${Math.floor(j / 4)}.${lane[j % 4]}` : `lr_b_${j}.${lane[q]}`;
  if (shape.lowRank === 'outer') {
    for (let q = 0; q < 4; q++) {
      for (let g = 0; g < C / 4; g++) {
        emit(
          `    let lr_b_${q}_${g} = params.lr_alpha * lr_b[params.lr_b_offset + (l4 * 4u + ${q}u) * params.lr_b_line + min(col0 + ${4 * g}u, params.n - 4u) / 4u];`,
        );
      }
    }
  } else {
    for (let j = 0; j < C; j++)
      emit(
        `    let lr_b_${j} = params.lr_alpha * lr_b[params.lr_b_offset + b_col_${j} * params.lr_k4 + l4];`,
      );
  }
  for (let r = 0; r < R; r++) {
    emit(
      shared
        ? `    let lr_a_${r} = subgroupBroadcast(lr_load_${Math.floor(r / shape.lanesN)}, ${r % shape.lanesN}u);`
        : `    let lr_a_${r} = lr_load_${r};`,
    );
    for (let j = 0; j < C; j++) {
      let sum = `acc_${r}_${j}`;
      for (let q = 0; q < 4; q++) sum = `fma(lr_a_${r}.${lane[q]}, ${bValue(j, q)}, ${sum})`;
      emit(`    acc_${r}_${j} = ${sum};`);
    }
  }
  emit('  }');
}

/**
 * Stores the tile row by row in a loop: each pass writes accumulator row 0, then shifts the rows
 * up by one. Unrolled, the stores (a scalar store per lane and component on lavapipe) would be as
 * much code as the main loop, and lavapipe compiles each kernel variant for seconds. The trip
 * count depends on params so the compiler does not unroll the loop back.
 */
function emitStoreLoop(
  shape: MatmulKernelShape,
  emit: (line: string) => void,
  store: (row: number) => string[],
) {
  const { rows: R, cols: C } = shape;
  emit(`  let store_rows = select(0u, min(${R}u, params.m - row0), row0 < params.m);`);
  emit('  for (var r = 0u; r < store_rows; r++) {');
  emit('    let at = c_base + (row0 + r) * params.c_row + col0;');
  for (const line of store(0)) emit(`    ${line}`);
  for (let r = 0; r + 1 < R; r++) {
    for (let j = 0; j < C; j++) emit(`    acc_${r}_${j} = acc_${r + 1}_${j};`);
  }
  emit('  }');
}

/** Adds the bias and stores one output at a time (any N, any column offset). */
function emitScalarEpilogue(shape: MatmulKernelShape, emit: (line: string) => void): void {
  const { cols: C } = shape;
  const cast = (value: string) => (shape.outType === 'f16' ? `f16(${value})` : value);
  for (let j = 0; j < C; j++) {
    emit(
      shape.bias ? `  let bias_${j} = f32(bias[params.bias_offset + b_col_${j}]);` : `  let bias_${j} = 0.0;`,
    );
  }
  emitStoreLoop(shape, emit, (r) =>
    Array.from({ length: C }, (_, j) => {
      const earlier = shape.accumulate ? `f32(out[at + ${j}u]) + ` : '';
      const product = shape.scaled && !shape.lowRank ? `params.alpha * acc_${r}_${j}` : `acc_${r}_${j}`;
      const residual = shape.residual ? ` + f32(residual[at + ${j}u])` : '';
      return `if (col0 + ${j}u < params.n) { out[at + ${j}u] = ${cast(`${earlier}${product} + bias_${j}${residual}`)}; }`;
    }),
  );
}

/**
 * Stores four columns at once: a quarter of the per-lane stores. Needs cols % 4 == 0 and the
 * output row length, offsets and column count of the launch all multiples of 4 (then a vec4 is
 * either wholly inside the output or wholly past it).
 */
function emitVectorEpilogue(shape: MatmulKernelShape, emit: (line: string) => void): void {
  const { cols: C } = shape;
  const type = `vec4<${shape.outType}>`;
  for (let q = 0; q < C / 4; q++) {
    emit(
      shape.bias
        ? `  let bias_${q} = vec4f(bias[(params.bias_offset + min(col0 + ${4 * q}u, last_col)) / 4u]);`
        : `  let bias_${q} = vec4f(0.0);`,
    );
  }
  emitStoreLoop(shape, emit, (r) =>
    Array.from({ length: C / 4 }, (_, q) => {
      const value = [0, 1, 2, 3].map((i) => `acc_${r}_${4 * q + i}`).join(', ');
      const earlier = shape.accumulate ? `vec4f(out[at / 4u + ${q}u]) + ` : '';
      const product = shape.scaled && !shape.lowRank ? `params.alpha * vec4f(${value})` : `vec4f(${value})`;
      const residual = shape.residual ? ` + vec4f(residual[at / 4u + ${q}u])` : '';
      return `if (col0 + ${4 * q}u < params.n) { out[at / 4u + ${q}u] = ${type}(${earlier}${product} + bias_${q}${residual}); }`;
    }),
  );
}

export const PACK_FIELDS: UniformField[] = [
  { name: 'count', type: 'u32' },
  { name: 'rows', type: 'u32' },
  { name: 'k', type: 'u32' },
  { name: 'k4', type: 'u32' },
  { name: 'tile', type: 'u32' },
  { name: 'panels', type: 'u32' },
  { name: 'row_stride', type: 'u32' },
  { name: 'k_stride', type: 'u32' },
  { name: 'offset', type: 'u32' },
  { name: 'batch_stride', type: 'u32' },
];

/**
 * Repacks a matrix (any row and k strides: row-major, transposed, a column block) into panels of
 * `tile` rows, [batch][panel][K/4][tile] vec4<f32>, zero-padded to whole panels and to K a
 * multiple of 4, so the matmul loop reads one contiguous stream per operand. f16 is widened here.
 */
export function packSource(sourceType: DType, workgroup: number): string {
  const load = (index: string) => (sourceType === 'f32' ? `src[${index}]` : `f32(src[${index}])`);
  const body = [
    '  let index = flat_workgroup(wid, nwg) * WG + lid.x;',
    '  if (index >= params.count) { return; }',
    '  let within = index % params.tile;',
    '  var rest = index / params.tile;',
    '  let k4 = rest % params.k4;',
    '  rest = rest / params.k4;',
    '  let row = (rest % params.panels) * params.tile + within;',
    '  let batch = rest / params.panels;',
    '  var value = vec4f(0.0);',
    '  if (row < params.rows) {',
    '    let base = params.offset + batch * params.batch_stride + row * params.row_stride;',
    '    let k = k4 * 4u;',
    `    value.x = ${load('base + k * params.k_stride')};`,
    `    if (k + 1u < params.k) { value.y = ${load('base + (k + 1u) * params.k_stride')}; }`,
    `    if (k + 2u < params.k) { value.z = ${load('base + (k + 2u) * params.k_stride')}; }`,
    `    if (k + 3u < params.k) { value.w = ${load('base + (k + 3u) * params.k_stride')}; }`,
    '  }',
    '  dst[index] = value;',
  ];
  return kernelSource({
    storage: [
      { name: 'src', type: sourceType, access: 'read' },
      { name: 'dst', type: 'vec4<f32>', access: 'read_write' },
    ],
    uniforms: PACK_FIELDS,
    workgroupSize: workgroup,
    body: body.join('\n'),
  });
}
