import { uniformStruct } from '../../device/uniforms.js';
import { loader, PROLOGUE, TILED_FIELDS, type TiledOperand } from './matmul-tiled-wgsl.js';
import type { SubgroupMatrixConfig } from './subgroup-matrix-config.js';
import { builtinOps, emulatedOps } from './subgroup-matrix-ops.js';

/**
 * One subgroup-matrix matmul pipeline (everything here changes the WGSL and so is in the key).
 *
 * Written from the Subgroup Matrix proposal (gpuweb #4195, Dawn's
 * `chromium_experimental_subgroup_matrix`): `subgroup_matrix_left<T, K, M>` is M rows x K columns,
 * `subgroup_matrix_right<T, N, K>` K x N, `subgroup_matrix_result<R, N, M>` M x N;
 * `subgroupMatrixLoad`/`Store` take a workgroup or storage array, an element offset, a
 * column-major flag and a stride in elements; every call must be in subgroup-uniform control flow;
 * the workgroup's x size must be a multiple of the adapter's largest subgroup.
 *
 * The kernel: a workgroup of `lanes` invocations (the adapter's subgroupMaxSize, so one subgroup
 * where the driver runs full subgroups) computes a tile of `fragmentsM` x `fragmentsN` result
 * matrices. For each `depth`-deep step of K its lanes stage an A panel (tile rows x depth, row
 * major) and a B panel (tile columns x depth, that is K x N column major) in workgroup memory, in
 * the component type, reading both operands in place through the tiled kernel's loaders (any row
 * and k strides, batches, zeros past K, rows and columns past the edge clamped). The subgroup then
 * multiplies and accumulates `depth / K` products per result matrix. At the end the results go to
 * workgroup memory and the lanes store the in-bounds ones, with the bias, in the output's dtype.
 * Every edge (rows, columns, K) is handled by staging and masking, never by the matrix ops.
 */
export interface SubgroupMatrixShape {
  config: SubgroupMatrixConfig;
  /** Invocations per workgroup: the adapter's subgroupMaxSize. */
  lanes: number;
  fragmentsM: number;
  fragmentsN: number;
  /** Result matrices' K steps per staged panel: depth = kSteps * config.K. */
  kSteps: number;
  /** Storage type of a, b, bias and the output (= the configuration's component type). */
  dtype: 'f32' | 'f16';
  a: TiledOperand;
  b: TiledOperand;
  bias: boolean;
  /**
   * Tests only: plain-WGSL stand-ins for the builtins (subgroup-matrix-ops.ts), so the kernel's
   * staging and edges run on adapters without the feature.
   */
  emulated?: boolean;
}

/** Output rows, columns and k per staged step of one workgroup. */
export function subgroupMatrixTile(
  shape: Pick<SubgroupMatrixShape, 'config' | 'fragmentsM' | 'fragmentsN' | 'kSteps'>,
): { rows: number; cols: number; depth: number } {
  return {
    rows: shape.fragmentsM * shape.config.M,
    cols: shape.fragmentsN * shape.config.N,
    depth: shape.kSteps * shape.config.K,
  };
}

/**
 * The tile for a configuration: about 32 x 32 outputs (at most 4 x 4 result matrices) and at least
 * 16 k per staged step, the step a multiple of 4 so each lane stages whole vec4s.
 */
export function subgroupMatrixLayout(config: SubgroupMatrixConfig): {
  fragmentsM: number;
  fragmentsN: number;
  kSteps: number;
} {
  const fragments = (extent: number) => Math.min(4, Math.max(1, Math.floor(32 / extent)));
  let kSteps = 1;
  while (kSteps * config.K < 16 || (kSteps * config.K) % 4 !== 0) kSteps++;
  return { fragmentsM: fragments(config.M), fragmentsN: fragments(config.N), kSteps };
}

/** Workgroup memory of a shape: the two panels in the component type plus the f32 result tile. */
export function subgroupMatrixWorkgroupBytes(
  shape: Pick<SubgroupMatrixShape, 'config' | 'dtype' | 'fragmentsM' | 'fragmentsN' | 'kSteps'>,
): number {
  const { rows, cols, depth } = subgroupMatrixTile(shape);
  const element = shape.dtype === 'f16' ? 2 : 4;
  return (rows + cols) * depth * element + rows * cols * 4;
}

export function subgroupMatrixKey(shape: SubgroupMatrixShape): string {
  const operand = (o: TiledOperand) => (o.vector ? 'v4' : o.kContiguous ? 'sk' : 'sr');
  const { M, N, K, componentType, resultComponentType } = shape.config;
  return [
    `${componentType}${M}x${N}x${K}${resultComponentType}`,
    `l${shape.lanes}`,
    `f${shape.fragmentsM}x${shape.fragmentsN}x${shape.kSteps}`,
    shape.dtype,
    operand(shape.a),
    operand(shape.b),
    shape.bias ? 'bias' : 'nobias',
    ...(shape.emulated ? ['emulated'] : []),
  ].join(':');
}

export function subgroupMatrixSource(shape: SubgroupMatrixShape): string {
  const { config, lanes, dtype: T } = shape;
  if (config.componentType !== T || config.resultComponentType !== 'f32') {
    throw new Error(`subgroupMatrixSource: a ${T} product needs ${T} inputs with an f32 result`);
  }
  const { M, N, K } = config;
  const { rows: TR, cols: TC, depth: D } = subgroupMatrixTile(shape);
  if (D % 4 !== 0) throw new Error(`subgroupMatrixSource: the staged depth ${D} is not a multiple of 4`);
  const ops = shape.emulated ? emulatedOps(config, shape.fragmentsM * shape.fragmentsN) : builtinOps(config);
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  for (const line of ops.enables) emit(line);
  const bindings = [
    { name: 'a', type: shape.a.vector ? `vec4<${T}>` : T, access: 'read' },
    { name: 'b', type: shape.b.vector ? `vec4<${T}>` : T, access: 'read' },
    ...(shape.bias ? [{ name: 'bias', type: T, access: 'read' }] : []),
    { name: 'out', type: T, access: 'read_write' },
  ];
  bindings.forEach((s, i) => {
    emit(`@group(0) @binding(${i}) var<storage, ${s.access}> ${s.name}: array<${s.type}>;`);
  });
  emit(uniformStruct(TILED_FIELDS));
  emit(`@group(0) @binding(${bindings.length}) var<uniform> params: Params;`);
  emit(loader('a', shape.a));
  emit(loader('b', shape.b));
  emit(`var<workgroup> panel_a: array<${T}, ${TR * D}>;`);
  emit(`var<workgroup> panel_b: array<${T}, ${TC * D}>;`);
  emit(`var<workgroup> result_tile: array<f32, ${TR * TC}>;`);
  for (const line of ops.functions) emit(line);
  emit(`@compute @workgroup_size(${lanes}, 1, 1)`);
  emit(
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {',
  );
  emit(PROLOGUE);
  for (const line of ops.prologue) emit(line);
  for (let i = 0; i < shape.fragmentsM; i++) {
    for (let j = 0; j < shape.fragmentsN; j++)
      emit(`  var acc_${i}_${j} = ${ops.zero(i * shape.fragmentsN + j)};`);
  }
  emit(`  for (var k0 = 0u; k0 < params.k; k0 += ${D}u) {`);
  emit('    workgroupBarrier();');
  // Each lane stages whole vec4s of k: slot s is (row s / (D / 4), k quad s % (D / 4)).
  for (const [name, count, start, last] of [
    ['a', TR, `tile_m * ${TR}u`, 'last_row'],
    ['b', TC, `tile_n * ${TC}u`, 'last_col'],
  ] as const) {
    emit(`    for (var s = lid.x; s < ${(count * D) / 4}u; s += ${lanes}u) {`);
    emit(`      let row = s / ${D / 4}u;`);
    emit(`      let quad = (s % ${D / 4}u) * 4u;`);
    emit(`      let v = load_${name}(${name}_base, min(${start} + row, ${last}), k0 + quad);`);
    for (let c = 0; c < 4; c++) emit(`      panel_${name}[row * ${D}u + quad + ${c}u] = ${T}(v[${c}]);`);
    emit('    }');
  }
  emit('    workgroupBarrier();');
  for (let step = 0; step < shape.kSteps; step++) {
    for (let i = 0; i < shape.fragmentsM; i++) {
      emit(`    let left_${step}_${i} = ${ops.load('left', i * M * D + step * K, false, D)};`);
    }
    for (let j = 0; j < shape.fragmentsN; j++) {
      // The B panel holds column c's k values contiguously: a K x N matrix in column-major order.
      emit(`    let right_${step}_${j} = ${ops.load('right', j * N * D + step * K, true, D)};`);
    }
    for (let i = 0; i < shape.fragmentsM; i++) {
      for (let j = 0; j < shape.fragmentsN; j++) {
        emit(
          `    acc_${i}_${j} = ${ops.multiplyAccumulate(`left_${step}_${i}`, `right_${step}_${j}`, `acc_${i}_${j}`)};`,
        );
      }
    }
  }
  emit('  }');
  emit('  workgroupBarrier();');
  for (let i = 0; i < shape.fragmentsM; i++) {
    for (let j = 0; j < shape.fragmentsN; j++) {
      emit(`  ${ops.store(i * M * TC + j * N, `acc_${i}_${j}`, false, TC)}`);
    }
  }
  emit('  workgroupBarrier();');
  emit(`  for (var e = lid.x; e < ${TR * TC}u; e += ${lanes}u) {`);
  emit(`    let row = tile_m * ${TR}u + e / ${TC}u;`);
  emit(`    let col = tile_n * ${TC}u + e % ${TC}u;`);
  emit('    if (row < params.m && col < params.n) {');
  const sum = shape.bias ? 'result_tile[e] + f32(bias[col])' : 'result_tile[e]';
  emit(`      out[c_base + row * params.n + col] = ${T === 'f16' ? `f16(${sum})` : sum};`);
  emit('    }');
  emit('  }');
  emit('}');
  return lines.join('\n');
}
