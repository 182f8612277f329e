import { uniformStruct } from '../../device/uniforms.js';
import { type DecodeMatvecOptions, PRODUCT_FIELDS } from './product-inputs.js';

/** 2 sqrt(2 / pi): GELU's tanh form is x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3). */
export const GELU_TANH_SCALE = 2 * Math.sqrt(2 / Math.PI);

/** What the prefill products' register tile computes, whatever the weight format. */
export interface PrefillTileShape {
  /** Output rows and columns one invocation accumulates (register tile), lanes per workgroup (along columns). */
  rows: number;
  cols: number;
  lanes: number;
  /** Weights read by separate workgroups (1 for the gated epilogue, which reads gate and up in one loop). */
  weights: number;
  lora: boolean[];
  norm: boolean;
  epilogue: DecodeMatvecOptions['epilogue'];
  bias: boolean;
  /** Lane l loads rows l, l + lanes, ... of the tile and subgroupBroadcast hands them to the others. */
  subgroups: boolean;
  /** The gated epilogue's activation is GELU's tanh form (Gemma's GeGLU) instead of SiLU. */
  gelu?: boolean;
  /** Per weight: DoRA's factor [n] multiplies its sum with its LoRA term (before the bias). */
  dora?: boolean[];
  /** The gated epilogue over one weight [2n, K] (Phi-3's gate_up_proj): up's rows start n rows after gate's. */
  stacked?: boolean;
  /**
   * Row tiles along x and weight blocks along y (and z): neighbouring workgroups read the same
   * weight slice for successive row tiles. Otherwise weight blocks along x (and y), row tiles along z.
   */
  rowTilesInner?: boolean;
}

/** What differs between weight formats: how a weight row is addressed and read over K. */
export interface PrefillTileWeights {
  /** WGSL element type of the weight bindings. */
  type: string;
  /** The stride of one weight row in that type: `w_at_j` = (the tile's column j) x stride. */
  rowStride: string;
  /**
   * The loop over K for weight `weight` (every weight of the gated epilogue at once), reading
   * `w_at_j` and accumulating into `acc_p_r_j` with `tileRowLoads` and `tileFmas`.
   */
  loop: (weight: number, tile: PrefillTile) => string;
  /** WGSL after the uniforms, for each weight binding (the ggml block decoders). */
  helpers?: (binding: string) => string;
}

/** The names and counts a format's loop needs. */
export interface PrefillTile {
  shape: PrefillTileShape;
  /** Sums accumulated per output (2 for the gated epilogue: gate and up). */
  sums: number;
  /** Rows loaded by each lane (all the tile's rows without subgroups). */
  loads: number;
  /** The weight binding sum `p` of weight `weight` reads. */
  nameOf: (p: number, weight: number) => string;
}

/** One step's row loads: the norm's gain, each lane's rows of x, and their squares for the norm. */
export function tileRowLoads(tile: PrefillTile, indent: string, step = 's'): string[] {
  const lines: string[] = [];
  if (tile.shape.norm) lines.push(`${indent}let gain = g[${step}];`);
  for (let i = 0; i < tile.loads; i++) {
    lines.push(`${indent}let a_${i} = x[x_at_${i} + ${step}];`);
    if (tile.shape.norm) lines.push(`${indent}squares_${i} += dot(a_${i}, a_${i});`);
  }
  return lines;
}

/**
 * One step's multiply-adds of the tile's rows by the weight values `b_p_j`: a chain of four fmas
 * per accumulator (dot() is a multiply and three adds on lavapipe).
 */
export function tileFmas(tile: PrefillTile, indent: string): string[] {
  const { rows: R, cols: C, lanes: L, subgroups } = tile.shape;
  const lines: string[] = [];
  for (let r = 0; r < R; r++) {
    const row = subgroups ? `row_${r}` : `a_${r}`;
    if (subgroups)
      lines.push(`${indent}let row_${r} = subgroupBroadcast(a_${Math.floor(r / L)}, ${r % L}u);`);
    for (let p = 0; p < tile.sums; p++)
      for (let j = 0; j < C; j++) {
        let sum = `acc_${p}_${r}_${j}`;
        for (const lane of ['x', 'y', 'z', 'w']) sum = `fma(${row}.${lane}, b_${p}_${j}.${lane}, ${sum})`;
        lines.push(`${indent}acc_${p}_${r}_${j} = ${sum};`);
      }
  }
  return lines;
}

/**
 * The prefill products' kernel around a format's loop over K: which weight a workgroup reads, the
 * tile's accumulators, the folded norm, and the stores with LoRA, DoRA, biases and the store /
 * residual / gated endings. Shared by prefillProduct (f32 and halves) and prefillQuantizedProduct
 * (ggml blocks).
 */
export function prefillTileSource(shape: PrefillTileShape, weights: PrefillTileWeights): string {
  const { rows: R, cols: C, lanes: L, norm, epilogue, subgroups } = shape;
  const gated = epilogue === 'swiglu';
  const sums = gated ? 2 : 1;
  const names = gated
    ? shape.stacked
      ? ['w0', 'w0']
      : ['w0', 'w1']
    : Array.from({ length: shape.weights }, (_, i) => `w${i}`);
  const bound = shape.stacked ? ['w0'] : names;
  const dora = shape.dora ?? [];
  const loads = subgroups ? R / L : R;
  const tile: PrefillTile = { shape, sums, loads, nameOf: (p, weight) => (gated ? names[p] : names[weight]) };
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  emit(shape.rowTilesInner ? '  let block = wid.z * nwg.y + wid.y;' : '  let block = wid.y * nwg.x + wid.x;');
  emit('  if (block >= params.blocks) { return; }');
  emit(`  let row0 = ${shape.rowTilesInner ? 'wid.x' : 'wid.z'} * ${R}u;`);
  // Rows and columns past the end read the last one again and store nothing.
  for (let i = 0; i < loads; i++) {
    const row = subgroups ? `row0 + ${i * L}u + lid.x` : `row0 + ${i}u`;
    emit(`  let x_at_${i} = min(${row}, params.rows - 1u) * params.k4;`);
  }
  emit('  var which = 0u;');
  emit('  var local = block;');
  emit('  var n = params.n0;');
  emit('  var out_offset = 0u;');
  if (!gated && shape.weights > 2) {
    emit(
      '  if (block >= params.start2) { which = 2u; local = block - params.start2; n = params.n2; out_offset = params.n0 + params.n1; }',
    );
  }
  if (!gated && shape.weights > 1) {
    emit(
      `  ${shape.weights > 2 ? 'else ' : ''}if (block >= params.start1) { which = 1u; local = block - params.start1; n = params.n1; out_offset = params.n0; }`,
    );
  }
  emit(`  let col0 = local * ${L * C}u + lid.x * ${C}u;`);
  for (let j = 0; j < C; j++) emit(`  let w_at_${j} = min(col0 + ${j}u, n - 1u) * ${weights.rowStride};`);
  for (let p = 0; p < sums; p++)
    for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`  var acc_${p}_${r}_${j} = 0.0;`);
  if (norm) for (let i = 0; i < loads; i++) emit(`  var squares_${i} = 0.0;`);
  if (gated || shape.weights === 1) emit(`  {\n${weights.loop(0, tile)}\n  }`);
  else {
    for (let w = 0; w < shape.weights; w++) {
      const guard =
        w === 0 ? 'if (which == 0u)' : w === shape.weights - 1 ? 'else' : `else if (which == ${w}u)`;
      emit(`  ${guard} {\n${weights.loop(w, tile)}\n  }`);
    }
  }
  // Each row's inverse RMS (the norm): from the squares of the lane that loaded the row.
  for (let r = 0; norm && r < R; r++) {
    const squares = subgroups ? `subgroupBroadcast(squares_${Math.floor(r / L)}, ${r % L}u)` : `squares_${r}`;
    emit(`  var inv_${r} = inverseSqrt(${squares} * params.inv_k + params.eps);`);
  }
  // The tile is stored row by row in a loop (accumulator row 0, then the rows shift up): unrolled,
  // the stores would be as much code as the loop, and lavapipe compiles for long.
  emit(`  let store_rows = select(0u, min(${R}u, params.rows - row0), row0 < params.rows);`);
  emit('  for (var r = 0u; r < store_rows; r++) {');
  emit('    let row = row0 + r;');
  for (let j = 0; j < C; j++) {
    emit(`    if (col0 + ${j}u < n) {`);
    emit(`      let col = col0 + ${j}u;`);
    for (let p = 0; p < sums; p++) {
      emit(`      var total_${p} = acc_${p}_0_${j}${norm ? ' * inv_0' : ''};`);
      const lora = (w: number) =>
        `{ var low = 0.0; for (var t = 0u; t < params.rank${w}; t++) { low += u[row * params.u_row + params.u_off${w} + t] * lora_b${w}[col * params.rank${w} + t]; } total_${p} += params.scale${w} * low;${dora[w] ? ` total_${p} *= dora_f${w}[col];` : ''} }`;
      if (gated) {
        if (shape.lora[p]) emit(`      ${lora(p)}`);
        if (shape.bias) emit(`      total_${p} += bias${p}[col];`);
      } else if (names.length === 1) {
        if (shape.lora[0]) emit(`      ${lora(0)}`);
        if (shape.bias) emit(`      total_${p} += bias0[col];`);
      } else {
        for (let w = 0; w < names.length; w++) {
          if (shape.lora[w]) emit(`      if (which == ${w}u) ${lora(w)}`);
          if (shape.bias) emit(`      if (which == ${w}u) { total_${p} += bias${w}[col]; }`);
        }
      }
    }
    emit('      let at = row * params.out_row + out_offset + col;');
    if (epilogue === 'store') emit('      out[at] = total_0;');
    else if (epilogue === 'residual') emit('      out[at] = out[at] + total_0;');
    else if (shape.gelu)
      // GELU's tanh form, x sigmoid(2u) with u = sqrt(2 / pi) (x + 0.044715 x^3): no overflow.
      emit(
        `      out[at] = total_0 / (1.0 + exp(-${GELU_TANH_SCALE} * (total_0 + 0.044715 * total_0 * total_0 * total_0))) * total_1;`,
      );
    else emit('      out[at] = total_0 / (1.0 + exp(-total_0)) * total_1;');
    emit('    }');
  }
  for (let r = 0; r + 1 < R; r++) {
    for (let p = 0; p < sums; p++)
      for (let j = 0; j < C; j++) emit(`    acc_${p}_${r}_${j} = acc_${p}_${r + 1}_${j};`);
    if (norm) emit(`    inv_${r} = inv_${r + 1};`);
  }
  emit('  }');

  const storage: { name: string; type: string; access: 'read' | 'read_write' }[] = [
    { name: 'x', type: 'vec4<f32>', access: 'read' },
    ...(norm ? [{ name: 'g', type: 'vec4<f32>', access: 'read' as const }] : []),
    ...bound.map((name) => ({ name, type: weights.type, access: 'read' as const })),
    ...(shape.bias ? names.map((_, i) => ({ name: `bias${i}`, type: 'f32', access: 'read' as const })) : []),
    ...(shape.lora.some(Boolean)
      ? [
          { name: 'u', type: 'f32', access: 'read' as const },
          ...shape.lora.flatMap((on, i) =>
            on ? [{ name: `lora_b${i}`, type: 'f32', access: 'read' as const }] : [],
          ),
        ]
      : []),
    ...dora.flatMap((on, i) => (on ? [{ name: `dora_f${i}`, type: 'f32', access: 'read' as const }] : [])),
    { name: 'out', type: 'f32', access: 'read_write' },
  ];
  // Written out here rather than through kernelSource(): the subgroup form needs `enable subgroups`
  // before the declarations.
  const header: string[] = [];
  if (subgroups) header.push('enable subgroups;');
  storage.forEach((s, i) => {
    header.push(`@group(0) @binding(${i}) var<storage, ${s.access}> ${s.name}: array<${s.type}>;`);
  });
  header.push(uniformStruct(PRODUCT_FIELDS));
  header.push(`@group(0) @binding(${storage.length}) var<uniform> params: Params;`);
  if (weights.helpers) for (const name of bound) header.push(weights.helpers(name));
  return [
    ...header,
    `@compute @workgroup_size(${L}, 1, 1)`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,',
    '        @builtin(num_workgroups) nwg: vec3u) {',
    ...lines,
    '}',
  ].join('\n');
}
