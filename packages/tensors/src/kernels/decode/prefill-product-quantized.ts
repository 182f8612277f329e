import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { uniformStruct } from '../../device/uniforms.js';
import { KERNELS } from '../names.js';
import { isQuantized } from '../packed-matmul/formats.js';
import { packedDecoderWgsl } from '../packed-matmul/packed-decoders-wgsl.js';
import {
  checkProductInputs,
  type DecodeMatvecOptions,
  PRODUCT_FIELDS,
  productBindings,
  productUniforms,
  subgroupsCover,
} from './product-inputs.js';

/** What one quantized prefill product kernel computes; everything here is in the pipeline key. */
export interface PrefillQuantizedShape {
  format: 'q8_0' | 'q4_0' | 'q4_k';
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
  /** The gated epilogue's activation is GELU's tanh form (Gemma's GeGLU) instead of SiLU. */
  gelu: boolean;
  /** Lane l loads rows l, l + lanes, ... of the tile and subgroupBroadcast hands them to the others. */
  subgroups: boolean;
  /** Per weight: DoRA's factor [n] multiplies its sum with its LoRA term (before the bias). */
  dora: boolean[];
  /** The gated epilogue over one weight [2n, K] (Phi-3's gate_up_proj): up's rows start n rows after gate's. */
  stacked: boolean;
}

/** 2 sqrt(2 / pi): GELU's tanh form is x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3). */
export const GELU_TANH_SCALE = 2 * Math.sqrt(2 / Math.PI);

/**
 * prefillProduct over ggml-quantized weights (Q8_0, Q4_0, Q4_K: QLoRA bases, GGUF imports): the
 * same inputs and results (optional RMSNorm folded into the product, up to three weights, biases,
 * LoRA's low-rank terms, the store / residual / gated epilogues) and the same register tile, with
 * the weights decoded in the kernel by the packed matmul's shared block decoders
 * (packed-decoders-wgsl.ts). The sum over K runs block by block: each weight row's 32-value block
 * scale is decoded once per block, and each decoded quad serves every row of the tile. The gated
 * epilogue takes SiLU or GELU's tanh form (`activation`).
 */
export function prefillQuantizedProduct(device: Device, options: DecodeMatvecOptions): void {
  const { weights, norm, epilogue } = options;
  const inputs = checkProductInputs('prefillProduct', options, {
    stacked: true,
    dora: true,
    quantized: true,
    gelu: true,
  });
  const { rows, n, format, biases, terms, stacked } = inputs;
  if (format === 'f32' || !isQuantized(format))
    throw new TensorError(
      `prefillQuantizedProduct: weights of ${format} are not ggml blocks (use prefillProduct)`,
    );
  const gated = epilogue === 'swiglu';
  const lanes = Math.max(1, device.tuning.matmulWorkgroup);
  // The gated epilogue keeps two sums per output (gate, up): half the columns, the same registers.
  const tileCols = Math.max(1, device.tuning.matmulTileCols);
  const cols = gated ? Math.max(1, Math.floor(tileCols / 2)) : tileCols;
  const tileRows = Math.max(1, device.tuning.matmulTileRows);
  const subgroups = device.tuning.matmulSubgroups && subgroupsCover(device, lanes);
  const shape: PrefillQuantizedShape = {
    format: format as PrefillQuantizedShape['format'],
    rows: subgroups ? Math.max(1, Math.floor(tileRows / lanes)) * lanes : tileRows,
    cols,
    lanes,
    weights: gated ? 1 : weights.length,
    lora: terms.map((t) => !!t),
    norm: !!norm,
    epilogue,
    bias: biases.length > 0,
    gelu: gated && options.activation === 'gelu_tanh',
    subgroups,
    dora: terms.map((t) => !!t?.factor),
    stacked,
  };
  const perBlock = lanes * cols;
  const perWeight = gated ? [Math.ceil(n[0] / perBlock)] : n.map((v) => Math.ceil(v / perBlock));
  const blocks = perWeight.reduce((a, b) => a + b, 0);
  const rowTiles = Math.ceil(rows / shape.rows);
  if (rowTiles > device.maxWorkgroupsPerDimension)
    throw new TensorError(`prefillProduct: ${rows} rows are more than one dispatch takes`);
  device.dispatch({
    key: prefillQuantizedKey(shape),
    source: () => prefillQuantizedSource(shape),
    bindings: productBindings(options, inputs),
    uniforms: { fields: PRODUCT_FIELDS, values: productUniforms(options, inputs, perWeight) },
    workgroups: [...grid(blocks, device.maxWorkgroupsPerDimension), rowTiles],
  });
}

export function prefillQuantizedKey(shape: PrefillQuantizedShape): string {
  const lora = shape.lora.some(Boolean) ? shape.lora.map((on) => (on ? '1' : '0')).join('') : '-';
  return [
    `${KERNELS.decode}:prefill-product-quantized`,
    shape.format,
    `${shape.rows}x${shape.cols}x${shape.lanes}`,
    `lora${lora}`,
    shape.weights,
    shape.norm ? 'norm' : 'plain',
    shape.epilogue,
    shape.gelu ? 'gelu' : 'silu',
    shape.bias ? 'bias' : 'nobias',
    shape.subgroups ? 'sg' : 'lanes',
    `dora${shape.dora.map((on) => (on ? '1' : '0')).join('')}`,
    shape.stacked ? 'stacked' : 'apart',
  ].join(':');
}

export function prefillQuantizedSource(shape: PrefillQuantizedShape): string {
  const { rows: R, cols: C, lanes: L, norm, epilogue, subgroups } = shape;
  const gated = epilogue === 'swiglu';
  const sums = gated ? 2 : 1;
  const names = gated
    ? shape.stacked
      ? ['w0', 'w0']
      : ['w0', 'w1']
    : Array.from({ length: shape.weights }, (_, i) => `w${i}`);
  const bound = shape.stacked ? ['w0'] : names;
  // Up's rows of a stacked gate/up weight start n rows (bytes) after gate's.
  const upAt = (p: number, j: number) =>
    shape.stacked && p === 1 ? `w_at_${j} + params.n0 * params.row_bytes` : `w_at_${j}`;
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
  // Byte offsets of the tile's weight rows (the decoders address rows in bytes).
  for (let j = 0; j < C; j++) emit(`  let w_at_${j} = min(col0 + ${j}u, n - 1u) * params.row_bytes;`);
  for (let p = 0; p < sums; p++)
    for (let r = 0; r < R; r++) for (let j = 0; j < C; j++) emit(`  var acc_${p}_${r}_${j} = 0.0;`);
  if (norm) for (let i = 0; i < loads; i++) emit(`  var squares_${i} = 0.0;`);
  const loop = (weight: number) => {
    const body: string[] = [];
    // Blocks of 32 values (8 vec4 steps) share one scale per weight row: decoded once per block.
    body.push('    for (var blk = 0u; blk < params.k4 / 8u; blk++) {');
    for (let p = 0; p < sums; p++) {
      const name = gated ? names[p] : names[weight];
      for (let j = 0; j < C; j++) body.push(`      let scale_${p}_${j} = ${name}_scale(${upAt(p, j)}, blk);`);
    }
    body.push('      for (var q = 0u; q < 8u; q++) {');
    body.push('        let s = blk * 8u + q;');
    if (norm) body.push('        let gain = g[s];');
    for (let i = 0; i < loads; i++) {
      body.push(`        let a_${i} = x[x_at_${i} + s];`);
      if (norm) body.push(`        squares_${i} += dot(a_${i}, a_${i});`);
    }
    for (let p = 0; p < sums; p++) {
      const name = gated ? names[p] : names[weight];
      for (let j = 0; j < C; j++) {
        body.push(
          `        let b_${p}_${j} = ${name}_quad(${upAt(p, j)}, s * 4u, scale_${p}_${j})${norm ? ' * gain' : ''};`,
        );
      }
    }
    for (let r = 0; r < R; r++) {
      const row = subgroups ? `row_${r}` : `a_${r}`;
      if (subgroups)
        body.push(`        let row_${r} = subgroupBroadcast(a_${Math.floor(r / L)}, ${r % L}u);`);
      for (let p = 0; p < sums; p++)
        for (let j = 0; j < C; j++) {
          let sum = `acc_${p}_${r}_${j}`;
          for (const lane of ['x', 'y', 'z', 'w']) sum = `fma(${row}.${lane}, b_${p}_${j}.${lane}, ${sum})`;
          body.push(`        acc_${p}_${r}_${j} = ${sum};`);
        }
    }
    body.push('      }');
    body.push('    }');
    return body.join('\n');
  };
  if (gated || shape.weights === 1) emit(`  {\n${loop(0)}\n  }`);
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
    const squares = subgroups ? `subgroupBroadcast(squares_${Math.floor(r / L)}, ${r % L}u)` : `squares_${r}`;
    emit(`  var inv_${r} = inverseSqrt(${squares} * params.inv_k + params.eps);`);
  }
  // The tile is stored row by row in a loop (accumulator row 0, then the rows shift up).
  emit(`  let store_rows = select(0u, min(${R}u, params.rows - row0), row0 < params.rows);`);
  emit('  for (var r = 0u; r < store_rows; r++) {');
  emit('    let row = row0 + r;');
  for (let j = 0; j < C; j++) {
    emit(`    if (col0 + ${j}u < n) {`);
    emit(`      let col = col0 + ${j}u;`);
    for (let p = 0; p < sums; p++) {
      emit(`      var total_${p} = acc_${p}_0_${j}${norm ? ' * inv_0' : ''};`);
      const lora = (w: number) =>
        `{ var low = 0.0; for (var t = 0u; t < params.rank${w}; t++) { low += u[row * params.u_row + params.u_off${w} + t] * lora_b${w}[col * params.rank${w} + t]; } total_${p} += params.scale${w} * low;${shape.dora[w] ? ` total_${p} *= dora_f${w}[col];` : ''} }`;
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
      // x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3): 0.5 x (1 + tanh(u)), no overflow.
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
    ...bound.map((name) => ({ name, type: 'u32', access: 'read' as const })),
    ...(shape.bias ? names.map((_, i) => ({ name: `bias${i}`, type: 'f32', access: 'read' as const })) : []),
    ...(shape.lora.some(Boolean)
      ? [
          { name: 'u', type: 'f32', access: 'read' as const },
          ...shape.lora.flatMap((on, i) =>
            on ? [{ name: `lora_b${i}`, type: 'f32', access: 'read' as const }] : [],
          ),
        ]
      : []),
    ...shape.dora.flatMap((on, i) =>
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
  // The shared block decoders, one set per weight binding.
  for (const name of bound)
    header.push(packedDecoderWgsl(shape.format, { buffer: name, prefix: `${name}_` }));
  return [
    ...header,
    `@compute @workgroup_size(${L}, 1, 1)`,
    'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,',
    '        @builtin(num_workgroups) nwg: vec3u) {',
    ...lines,
    '}',
  ].join('\n');
}
