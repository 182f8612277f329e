import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { uniformStruct } from '../../device/uniforms.js';
import { KERNELS } from '../names.js';
import { isQuantized } from '../packed-matmul/formats.js';
import { PackedWeight } from '../packed-matmul/packed-weight.js';
import { GELU_TANH_SCALE, prefillQuantizedProduct } from './prefill-product-quantized.js';
import {
  checkProductInputs,
  type DecodeMatvecOptions,
  loadWeight,
  PRODUCT_FIELDS,
  productBindings,
  productUniforms,
  subgroupsCover,
} from './product-inputs.js';

/** What one prefill product kernel computes; everything here is in the pipeline key. */
export interface PrefillProductShape {
  format: 'f32' | 'f16' | 'bf16';
  /** Output rows and columns one invocation accumulates (register tile), lanes per workgroup (along columns). */
  rows: number;
  cols: number;
  lanes: number;
  /** Weights read by separate workgroups (1 for swiglu, which reads gate and up in one loop). */
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
}

/**
 * The products of a prompt's rows in prefill, with the same inputs and results as decodeMatvec
 * (optional RMSNorm of the rows, up to three weights read in place in [out, in] layout, f32 or
 * f16/bf16 halves, or ggml blocks through prefillQuantizedProduct; biases, LoRA's low-rank terms
 * with DoRA's factors, the store / residual / gated epilogues with SiLU or GeGLU, and a stacked
 * gate/up weight),
 * but as a register-tiled product: each invocation accumulates a tile of `rows` x `cols`
 * outputs, so every weight is read once per tile of rows (decodeMatvec reads it once per 8 rows,
 * and splits K over lanes, which suits one row). The norm is folded into the product:
 * sum_k x g w = (sum_k x (g w)), scaled by each row's inverse RMS, whose squares are summed in
 * the same loop over K. Tile sizes and the subgroup loads follow the register matmul's tuning
 * (matmulTileRows, matmulTileCols, matmulWorkgroup, matmulSubgroups).
 */
export function prefillProduct(device: Device, options: DecodeMatvecOptions): void {
  const { weights, norm, epilogue } = options;
  // ggml blocks (Q8_0, Q4_0, Q4_K): the same product with the blocks decoded in the kernel.
  if (weights.some((w) => w instanceof PackedWeight && isQuantized(w.format))) {
    prefillQuantizedProduct(device, options);
    return;
  }
  const inputs = checkProductInputs('prefillProduct', options, { stacked: true, dora: true, gelu: true });
  const { rows, n, format, biases, terms, stacked } = inputs;
  const swiglu = epilogue === 'swiglu';
  const lanes = Math.max(1, device.tuning.matmulWorkgroup);
  // SwiGLU keeps two sums per output (gate, up): half the columns, the same registers and rows
  // (each row loaded still serves as many products).
  const tileCols = Math.max(1, device.tuning.matmulTileCols);
  const cols = swiglu ? Math.max(1, Math.floor(tileCols / 2)) : tileCols;
  const tileRows = Math.max(1, device.tuning.matmulTileRows);
  const subgroups = device.tuning.matmulSubgroups && subgroupsCover(device, lanes);
  const shape: PrefillProductShape = {
    format,
    // With subgroup loads the tile's rows are a multiple of the lanes (lane l loads rows l, l + lanes, ...).
    rows: subgroups ? Math.max(1, Math.floor(tileRows / lanes)) * lanes : tileRows,
    cols,
    lanes,
    weights: swiglu ? 1 : weights.length,
    lora: terms.map((t) => !!t),
    norm: !!norm,
    epilogue,
    bias: biases.length > 0,
    subgroups,
    gelu: swiglu && options.activation === 'gelu_tanh',
    dora: terms.map((t) => !!t?.factor),
    stacked,
  };
  const perBlock = lanes * cols;
  const perWeight = swiglu ? [Math.ceil(n[0] / perBlock)] : n.map((v) => Math.ceil(v / perBlock));
  const blocks = perWeight.reduce((a, b) => a + b, 0);
  const rowTiles = Math.ceil(rows / shape.rows);
  if (rowTiles > device.maxWorkgroupsPerDimension)
    throw new TensorError(`prefillProduct: ${rows} rows are more than one dispatch takes`);
  device.dispatch({
    key: prefillProductKey(shape),
    source: () => prefillProductSource(shape),
    bindings: productBindings(options, inputs),
    uniforms: { fields: PRODUCT_FIELDS, values: productUniforms(options, inputs, perWeight) },
    workgroups: [...grid(blocks, device.maxWorkgroupsPerDimension), rowTiles],
  });
}

export function prefillProductKey(shape: PrefillProductShape): string {
  const lora = shape.lora.some(Boolean) ? shape.lora.map((on) => (on ? '1' : '0')).join('') : '-';
  return [
    `${KERNELS.decode}:prefill-product`,
    shape.format,
    `${shape.rows}x${shape.cols}x${shape.lanes}`,
    `lora${lora}`,
    shape.weights,
    shape.norm ? 'norm' : 'plain',
    shape.epilogue,
    shape.bias ? 'bias' : 'nobias',
    shape.subgroups ? 'sg' : 'lanes',
    ...(shape.gelu ? ['gelu'] : []),
    ...(shape.dora?.some(Boolean) ? [`dora${shape.dora.map((on) => (on ? '1' : '0')).join('')}`] : []),
    ...(shape.stacked ? ['stacked'] : []),
  ].join(':');
}

/** The 4 weight values at vec4 index `at`: a vec4 load (f32) or two words of two halves (f16, bf16). */
export function prefillProductSource(shape: PrefillProductShape): string {
  const { rows: R, cols: C, lanes: L, norm, epilogue, subgroups } = shape;
  const swiglu = epilogue === 'swiglu';
  const sums = swiglu ? 2 : 1;
  const names = swiglu
    ? shape.stacked
      ? ['w0', 'w0']
      : ['w0', 'w1']
    : Array.from({ length: shape.weights }, (_, i) => `w${i}`);
  const bound = shape.stacked ? ['w0'] : names;
  const loads = subgroups ? R / L : R;
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  emit('  let block = wid.y * nwg.x + wid.x;');
  emit('  if (block >= params.blocks) { return; }');
  emit(`  let row0 = wid.z * ${R}u;`);
  // Rows and columns past the end read the last one again and store nothing.
  for (let i = 0; i < loads; i++) {
    const row = subgroups ? `row0 + ${i * L}u + lid.x` : `row0 + ${i}u`;
    emit(`  let x_at_${i} = min(${row}, params.rows - 1u) * params.k4;`);
  }
  emit('  var which = 0u;');
  emit('  var local = block;');
  emit('  var n = params.n0;');
  emit('  var out_offset = 0u;');
  if (!swiglu && shape.weights > 2) {
    emit(
      '  if (block >= params.start2) { which = 2u; local = block - params.start2; n = params.n2; out_offset = params.n0 + params.n1; }',
    );
  }
  if (!swiglu && shape.weights > 1) {
    emit(
      `  ${shape.weights > 2 ? 'else ' : ''}if (block >= params.start1) { which = 1u; local = block - params.start1; n = params.n1; out_offset = params.n0; }`,
    );
  }
  emit(`  let col0 = local * ${L * C}u + lid.x * ${C}u;`);
  for (let j = 0; j < C; j++) emit(`  let w_at_${j} = min(col0 + ${j}u, n - 1u) * params.k4;`);
  for (let p = 0; p < sums; p++)
    for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`  var acc_${p}_${r}_${j} = 0.0;`);
  if (norm) for (let i = 0; i < loads; i++) emit(`  var squares_${i} = 0.0;`);
  const loop = (weight: number) => {
    const body: string[] = [];
    body.push('    for (var s = 0u; s < params.k4; s++) {');
    if (norm) body.push('      let gain = g[s];');
    for (let i = 0; i < loads; i++) {
      body.push(`      let a_${i} = x[x_at_${i} + s];`);
      if (norm) body.push(`      squares_${i} += dot(a_${i}, a_${i});`);
    }
    for (let p = 0; p < sums; p++) {
      const name = swiglu ? names[p] : names[weight];
      for (let j = 0; j < C; j++) {
        body.push(
          `      let b_${p}_${j} = ${loadWeight(shape.format, name, `w_at_${j} + ${shape.stacked && p === 1 ? 'params.n0 * params.k4 + ' : ''}s`)}${norm ? ' * gain' : ''};`,
        );
      }
    }
    for (let r = 0; r < R; r++) {
      const row = subgroups ? `row_${r}` : `a_${r}`;
      if (subgroups) body.push(`      let row_${r} = subgroupBroadcast(a_${Math.floor(r / L)}, ${r % L}u);`);
      // A chain of four fmas per accumulator (dot() is a multiply and three adds on lavapipe).
      for (let p = 0; p < sums; p++)
        for (let j = 0; j < C; j++) {
          let sum = `acc_${p}_${r}_${j}`;
          for (const lane of ['x', 'y', 'z', 'w']) sum = `fma(${row}.${lane}, b_${p}_${j}.${lane}, ${sum})`;
          body.push(`      acc_${p}_${r}_${j} = ${sum};`);
        }
    }
    body.push('    }');
    return body.join('\n');
  };
  if (swiglu || shape.weights === 1) emit(`  {\n${loop(0)}\n  }`);
  else {
    for (let w = 0; w < shape.weights; w++) {
      const guard =
        w === 0 ? 'if (which == 0u)' : w === shape.weights - 1 ? 'else' : `else if (which == ${w}u)`;
      emit(`  ${guard} {\n${loop(w)}\n  }`);
    }
  }
  // Each row's inverse RMS (the norm): from the squares of the lane that loaded the row.
  for (let r = 0; r < R; r++) {
    if (!norm) continue;
    if (subgroups) {
      emit(
        `  var inv_${r} = inverseSqrt(subgroupBroadcast(squares_${Math.floor(r / L)}, ${r % L}u) * params.inv_k + params.eps);`,
      );
    } else emit(`  var inv_${r} = inverseSqrt(squares_${r} * params.inv_k + params.eps);`);
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
        `{ var low = 0.0; for (var t = 0u; t < params.rank${w}; t++) { low += u[row * params.u_row + params.u_off${w} + t] * lora_b${w}[col * params.rank${w} + t]; } total_${p} += params.scale${w} * low;${shape.dora?.[w] ? ` total_${p} *= dora_f${w}[col];` : ''} }`;
      if (swiglu) {
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
    ...bound.map((name) => ({
      name,
      type: shape.format === 'f32' ? 'vec4<f32>' : 'u32',
      access: 'read' as const,
    })),
    ...(shape.bias ? names.map((_, i) => ({ name: `bias${i}`, type: 'f32', access: 'read' as const })) : []),
    ...(shape.lora.some(Boolean)
      ? [
          { name: 'u', type: 'f32', access: 'read' as const },
          ...shape.lora.flatMap((on, i) =>
            on ? [{ name: `lora_b${i}`, type: 'f32', access: 'read' as const }] : [],
          ),
        ]
      : []),
    ...(shape.dora ?? []).flatMap((on, i) =>
      on ? [{ name: `dora_f${i}`, type: 'f32', access: 'read' as const }] : [],
    ),
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
  return [
    ...header,
    `@compute @workgroup_size(${L}, 1, 1)`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,',
    '        @builtin(num_workgroups) nwg: vec3u) {',
    ...lines,
    '}',
  ].join('\n');
}
