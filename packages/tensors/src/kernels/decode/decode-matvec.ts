import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { KERNELS } from '../names.js';
import { isQuantized } from '../packed-matmul/formats.js';
import { packedDecoderWgsl } from '../packed-matmul/packed-decoders-wgsl.js';
import { PackedWeight } from '../packed-matmul/packed-weight.js';
import { kernelSource } from '../shared/wgsl.js';
import {
  checkProductInputs,
  type DecodeEpilogue,
  type DecodeMatvecOptions,
  type HalfOrF32,
  loadWeight,
  PRODUCT_FIELDS,
  type ProductFormat,
  productBindings,
  productUniforms,
  subgroupsCover,
} from './product-inputs.js';

export type { DecodeEpilogue, DecodeMatvecOptions } from './product-inputs.js';

/**
 * Rows one workgroup computes when x has more of them than that (prefill): a third grid axis
 * takes the rest. SwiGLU keeps two sums per output, so it takes half as many rows (registers).
 */
const ROW_BLOCK = 8;

/** 2 sqrt(2 / pi): GELU's tanh form is x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3). */
const GELU_TANH_SCALE = 2 * Math.sqrt(2 / Math.PI);

/**
 * One dispatch of batch-`rows` decoding (or of a prompt's rows in prefill): an optional RMSNorm of
 * the rows, their products with up to three weights read in place ([out, in], no transposed copy),
 * and an epilogue. Each workgroup computes `cols` outputs of one weight for up to ROW_BLOCK rows; its `lanes` split K and add their
 * partial sums in workgroup memory. The norm's inverse RMS is computed by every workgroup (K is
 * a hidden size: cheaper than a dispatch).
 */
export function decodeMatvec(device: Device, options: DecodeMatvecOptions): void {
  const [only] = options.weights;
  if (options.weights.length === 1 && only instanceof PackedWeight && only.chunks.length > 1) {
    chunkedMatvec(device, options, only);
    return;
  }
  const { norm, epilogue } = options;
  const inputs = checkProductInputs('decodeMatvec', options, {
    stacked: true,
    dora: true,
    quantized: true,
    gelu: true,
    outColumn: true,
  });
  const { rows, n, format, biases, lowRank, terms, stacked } = inputs;
  // The small-M matmul's tuning: lavapipe wants few lanes and many columns, GPUs the reverse.
  const lanes = Math.max(1, device.tuning.matmulSmallRowsLanes);
  const cols = Math.max(1, device.tuning.matmulSmallRowsCols);
  // Decoding computes every row in each workgroup; a prompt's rows go in blocks per workgroup.
  const rowBlock = Math.min(rows, epilogue === 'swiglu' ? ROW_BLOCK / 2 : ROW_BLOCK);
  const rowBlocks = Math.ceil(rows / rowBlock);
  if (rowBlocks > device.maxWorkgroupsPerDimension)
    throw new TensorError(`decodeMatvec: ${rows} rows are more than one dispatch takes`);
  const perWeight = epilogue === 'swiglu' ? [Math.ceil(n[0] / cols)] : n.map((v) => Math.ceil(v / cols));
  const blocks = perWeight.reduce((a, b) => a + b, 0);
  const loraMask = terms.map((t) => (t ? (t.factor ? 'd' : '1') : '0')).join('');
  const shape = {
    lora: terms.map((t) => !!t),
    dora: terms.map((t) => !!t?.factor),
    format,
    rows: rowBlock,
    weights: epilogue === 'swiglu' ? 1 : options.weights.length,
    norm: !!norm,
    epilogue,
    bias: biases.length > 0,
    lanes,
    cols,
    stacked,
    gelu: epilogue === 'swiglu' && options.activation === 'gelu_tanh',
    // The subgroup form unrolls the epilogue per output: with LoRA's loops that is slow to compile.
    subgroups: subgroupsCover(device, lanes) && !lowRank,
  };
  device.dispatch({
    key: `${KERNELS.decode}:matvec:${format}:${rowBlock}:${stacked ? 'stacked:' : ''}lora${lowRank ? loraMask : '-'}:${shape.weights}:${shape.norm ? 'norm' : 'plain'}:${epilogue}:${shape.bias ? 'bias' : 'nobias'}${shape.gelu ? ':gelu' : ''}:${lanes}x${cols}:${shape.subgroups ? 'sg' : 'wg'}`,
    source: () => matvecSource(shape),
    bindings: productBindings(options, inputs),
    uniforms: { fields: PRODUCT_FIELDS, values: productUniforms(options, inputs, perWeight) },
    workgroups: [...grid(blocks, device.maxWorkgroupsPerDimension), rowBlocks],
  });
}

/**
 * A packed weight split in chunks of rows (a vocabulary-wide head over one binding): its chunks
 * are weights side by side in out, up to three per dispatch (each dispatch writes its columns).
 * Only a plain 'store' product takes it (a head: no bias, no LoRA term).
 */
function chunkedMatvec(device: Device, options: DecodeMatvecOptions, weight: PackedWeight): void {
  if (options.epilogue !== 'store' || (options.biases?.length ?? 0) > 0 || options.lowRank)
    throw new TensorError(
      `decodeMatvec: ${weight.describe()} is split over ${weight.chunks.length} buffers; only a 'store' product without bias or LoRA term (a head) takes such a weight`,
    );
  const views = weight.chunks.map(
    (chunk) =>
      new PackedWeight(device, weight.format, [chunk.rows, weight.cols], [{ ...chunk, firstRow: 0 }]),
  );
  const start = options.outColumn ?? 0;
  if (options.out.shape[1] < start + weight.rows)
    throw new TensorError(
      `decodeMatvec: out ${options.out.describe()} has no room for the ${weight.rows} outputs of ${weight.describe()} from column ${start}`,
    );
  for (let first = 0; first < views.length; first += 3) {
    decodeMatvec(device, {
      ...options,
      weights: views.slice(first, first + 3),
      outColumn: start + weight.chunks[first].firstRow,
    });
  }
}

interface MatvecShape {
  /** Per weight: whether a LoRA term (u, B) is added, and whether DoRA's factor then scales it. */
  lora: boolean[];
  dora: boolean[];
  /**
   * f32 weights (vec4 loads), packed halves (two u32 words per 4 values), or ggml blocks (Q8_0,
   * Q4_0, Q4_K: the lanes split K by 32-value blocks, each decoding its block's scale once).
   */
  format: ProductFormat;
  /** Rows per workgroup (workgroup z takes rows z R .. z R + R - 1 of x, clamped). */
  rows: number;
  /** Weights read by separate workgroups (1 for swiglu, which reads both in one loop). */
  weights: number;
  norm: boolean;
  epilogue: DecodeEpilogue;
  bias: boolean;
  /** Invocations per workgroup (they split K) and outputs per workgroup. */
  lanes: number;
  cols: number;
  /** Add the lanes' partial sums with subgroupAdd (the workgroup is one subgroup): no barrier. */
  subgroups: boolean;
  /** SwiGLU over one weight [2n, K]: up's rows start n rows after gate's. */
  stacked: boolean;
  /** The gated epilogue's activation is GELU's tanh form (GeGLU) instead of SiLU. */
  gelu: boolean;
}

function matvecSource(shape: MatvecShape): string {
  const { rows: R, norm, epilogue } = shape;
  const C = shape.cols;
  const L = shape.lanes;
  const swiglu = epilogue === 'swiglu';
  const sums = swiglu ? 2 : 1;
  const weightNames = swiglu
    ? shape.stacked
      ? ['w0']
      : ['w0', 'w1']
    : Array.from({ length: shape.weights }, (_, i) => `w${i}`);
  const lines: string[] = [];
  const emit = (line: string) => lines.push(line);
  emit('  let block = wid.y * nwg.x + wid.x;');
  emit('  if (block >= params.blocks) { return; }');
  emit(`  let row0 = wid.z * ${R}u;`);
  // Rows past the last read the last one again and store nothing.
  for (let r = 0; r < R; r++) emit(`  let x_${r} = min(row0 + ${r}u, params.rows - 1u) * params.k4;`);
  for (let r = 0; r < R; r++) emit(`  var inv_${r} = 1.0;`);
  if (norm && shape.subgroups) {
    for (let r = 0; r < R; r++) {
      emit(`  var squares_${r} = 0.0;`);
      emit(
        `  for (var s = lid.x; s < params.k4; s += ${L}u) { let v = x[x_${r} + s]; squares_${r} += dot(v, v); }`,
      );
      emit(`  inv_${r} = inverseSqrt(subgroupAdd(squares_${r}) * params.inv_k + params.eps);`);
    }
  } else if (norm) {
    for (let r = 0; r < R; r++) {
      emit(`  var squares_${r} = 0.0;`);
      emit(
        `  for (var s = lid.x; s < params.k4; s += ${L}u) { let v = x[x_${r} + s]; squares_${r} += dot(v, v); }`,
      );
      emit(`  partial[${r * L}u + lid.x] = squares_${r};`);
    }
    emit('  workgroupBarrier();');
    for (let r = 0; r < R; r++) {
      emit(`  var total_squares_${r} = 0.0;`);
      emit(`  for (var i = 0u; i < ${L}u; i++) { total_squares_${r} += partial[${r * L}u + i]; }`);
      emit(`  inv_${r} = inverseSqrt(total_squares_${r} * params.inv_k + params.eps);`);
    }
    emit('  workgroupBarrier();');
  }
  emit('  var which = 0u;');
  emit('  var local = block;');
  emit('  var n = params.n0;');
  emit('  var out_offset = params.out_col;');
  if (!swiglu && shape.weights > 2) {
    emit(
      '  if (block >= params.start2) { which = 2u; local = block - params.start2; n = params.n2; out_offset += params.n0 + params.n1; }',
    );
    emit(
      '  else if (block >= params.start1) { which = 1u; local = block - params.start1; n = params.n1; out_offset += params.n0; }',
    );
  } else if (!swiglu && shape.weights > 1) {
    emit(
      '  if (block >= params.start1) { which = 1u; local = block - params.start1; n = params.n1; out_offset += params.n0; }',
    );
  }
  emit(`  let col0 = local * ${C}u;`);
  for (let r = 0; r < R; r++)
    for (let j = 0; j < C; j++) for (let p = 0; p < sums; p++) emit(`  var acc_${p}_${r}_${j} = 0.0;`);
  const quantized = isQuantized(shape.format as 'q8_0');
  // A quantized weight's rows are addressed in bytes (the decoders' `row`), the others' in vec4s.
  const rowUnit = quantized ? 'params.row_bytes' : 'params.k4';
  for (let j = 0; j < C; j++) emit(`  let row_${j} = min(col0 + ${j}u, n - 1u) * ${rowUnit};`);
  const loop = (weightIndex: number) => {
    const body: string[] = [];
    if (quantized) {
      // Lanes take whole 32-value blocks: each weight row's block scale is decoded once per block.
      body.push(`    for (var blk = lid.x; blk < params.k4 / 8u; blk += ${L}u) {`);
      const names: string[] = [];
      for (let j = 0; j < C; j++) {
        for (let p = 0; p < sums; p++) {
          const name = swiglu ? weightNames[shape.stacked ? 0 : p] : weightNames[weightIndex];
          const at = shape.stacked && p === 1 ? `row_${j} + params.n0 * params.row_bytes` : `row_${j}`;
          body.push(`      let at_${p}_${j} = ${at};`);
          body.push(`      let scale_${p}_${j} = ${name}_scale(at_${p}_${j}, blk);`);
          names.push(name);
        }
      }
      body.push('      for (var q = 0u; q < 8u; q++) {');
      body.push('        let s = blk * 8u + q;');
      if (norm) body.push('        let gain = g[s];');
      for (let r = 0; r < R; r++) {
        const scaled = norm ? ` * gain * inv_${r}` : '';
        body.push(`        let a_${r} = x[x_${r} + s]${scaled};`);
      }
      let index = 0;
      for (let j = 0; j < C; j++) {
        for (let p = 0; p < sums; p++) {
          body.push(
            `        let b_${p}_${j} = ${names[index++]}_quad(at_${p}_${j}, s * 4u, scale_${p}_${j});`,
          );
          for (let r = 0; r < R; r++) body.push(`        acc_${p}_${r}_${j} += dot(a_${r}, b_${p}_${j});`);
        }
      }
      body.push('      }');
      body.push('    }');
      return body.join('\n');
    }
    body.push(`    for (var s = lid.x; s < params.k4; s += ${L}u) {`);
    if (norm) body.push('      let gain = g[s];');
    for (let r = 0; r < R; r++) {
      const scaled = norm ? ` * gain * inv_${r}` : '';
      body.push(`      let a_${r} = x[x_${r} + s]${scaled};`);
    }
    for (let j = 0; j < C; j++) {
      for (let p = 0; p < sums; p++) {
        const name = swiglu ? weightNames[shape.stacked ? 0 : p] : weightNames[weightIndex];
        const at = shape.stacked && p === 1 ? `row_${j} + params.n0 * params.k4 + s` : `row_${j} + s`;
        body.push(`      let b_${p}_${j} = ${loadWeight(shape.format as HalfOrF32, name, at)};`);
        for (let r = 0; r < R; r++) body.push(`      acc_${p}_${r}_${j} += dot(a_${r}, b_${p}_${j});`);
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
  const count = R * C * sums;
  /** Bias and epilogue of one output: its sums (gate, up), row and column expressions. */
  const store = (totals: string[], row: string, col: string): string[] => {
    const out: string[] = [];
    totals.forEach((total, p) => {
      out.push(`      var total_${p} = ${total};`);
      // LoRA: + scale_w * sum_t u[row, off_w + t] * B_w[col, t] for the weight of this sum.
      const lora = (w: number) =>
        `{ var low = 0.0; for (var t = 0u; t < params.rank${w}; t++) { low += u[${row} * params.u_row + params.u_off${w} + t] * lora_b${w}[${col} * params.rank${w} + t]; } total_${p} += params.scale${w} * low;${shape.dora[w] ? ` total_${p} *= dora_f${w}[${col}];` : ''} }`;
      if (swiglu) {
        if (shape.lora[p]) out.push(`      ${lora(p)}`);
      } else if (weightNames.length === 1) {
        if (shape.lora[0]) out.push(`      ${lora(0)}`);
      } else {
        for (let w = 0; w < weightNames.length; w++) {
          if (shape.lora[w]) out.push(`      if (which == ${w}u) ${lora(w)}`);
        }
      }
      if (!shape.bias) return;
      if (swiglu || weightNames.length === 1) out.push(`      total_${p} += bias${p}[${col}];`);
      else {
        for (let w = 0; w < weightNames.length; w++) {
          out.push(`      if (which == ${w}u) { total_${p} += bias${w}[${col}]; }`);
        }
      }
    });
    out.push(`      let at = ${row} * params.out_row + out_offset + ${col};`);
    if (epilogue === 'store') out.push('      out[at] = total_0;');
    else if (epilogue === 'residual') out.push('      out[at] = out[at] + total_0;');
    else if (shape.gelu)
      // x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3): 0.5 x (1 + tanh(u)), no overflow.
      out.push(
        `      out[at] = total_0 / (1.0 + exp(-${GELU_TANH_SCALE} * (total_0 + 0.044715 * total_0 * total_0 * total_0))) * total_1;`,
      );
    else out.push('      out[at] = total_0 / (1.0 + exp(-total_0)) * total_1;');
    return out;
  };
  const sumsOf = Array.from({ length: sums }, (_, p) => p);
  if (shape.subgroups) {
    // Every lane gets every total; lane t % lanes stores output t.
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < C; j++) {
        for (const p of sumsOf) emit(`  let sum_${p}_${r}_${j} = subgroupAdd(acc_${p}_${r}_${j});`);
        emit(`  if (lid.x == ${(r * C + j) % L}u && col0 + ${j}u < n && row0 + ${r}u < params.rows) {`);
        for (const line of store(
          sumsOf.map((p) => `sum_${p}_${r}_${j}`),
          `(row0 + ${r}u)`,
          `(col0 + ${j}u)`,
        ))
          emit(line);
        emit('  }');
      }
    }
  } else {
    const slot = (p: number, r: number, j: number) => (p * R * C + r * C + j) * L;
    for (const p of sumsOf)
      for (let r = 0; r < R; r++)
        for (let j = 0; j < C; j++) emit(`  partial[${slot(p, r, j)}u + lid.x] = acc_${p}_${r}_${j};`);
    emit('  workgroupBarrier();');
    // Lane l adds the partial sums of outputs t = l, l + lanes, ... (and of their up products).
    emit(`  for (var t = lid.x; t < ${R * C}u; t += ${L}u) {`);
    emit(`    let r = t / ${C}u;`);
    emit(`    let col = col0 + t % ${C}u;`);
    emit('    if (col < n && row0 + r < params.rows) {');
    for (const p of sumsOf) {
      emit(`      var partial_${p} = 0.0;`);
      emit(
        `      for (var i = 0u; i < ${L}u; i++) { partial_${p} += partial[(${p * R * C}u + t) * ${L}u + i]; }`,
      );
    }
    for (const line of store(
      sumsOf.map((p) => `partial_${p}`),
      '(row0 + r)',
      'col',
    ))
      emit(line);
    emit('    }');
    emit('  }');
  }
  const source = kernelSource({
    storage: [
      { name: 'x', type: 'vec4<f32>', access: 'read' },
      ...(norm ? [{ name: 'g', type: 'vec4<f32>' as const, access: 'read' as const }] : []),
      ...weightNames.map((name) => ({
        name,
        type: shape.format === 'f32' ? ('vec4<f32>' as const) : ('u32' as const),
        access: 'read' as const,
      })),
      ...(shape.bias
        ? weightNames.map((_, i) => ({ name: `bias${i}`, type: 'f32' as const, access: 'read' as const }))
        : []),
      ...(shape.lora.some(Boolean)
        ? [
            { name: 'u', type: 'f32' as const, access: 'read' as const },
            ...shape.lora.flatMap((on, i) =>
              on ? [{ name: `lora_b${i}`, type: 'f32' as const, access: 'read' as const }] : [],
            ),
          ]
        : []),
      ...shape.dora.flatMap((on, i) =>
        on ? [{ name: `dora_f${i}`, type: 'f32' as const, access: 'read' as const }] : [],
      ),
      { name: 'out', type: 'f32', access: 'read_write' },
    ],
    uniforms: PRODUCT_FIELDS,
    workgroupSize: L,
    helpers: [
      shape.subgroups ? '' : `var<workgroup> partial: array<f32, ${Math.max(count, R) * L}>;`,
      // The shared block decoders (packed-decoders-wgsl.ts), one set per weight binding.
      ...(quantized
        ? weightNames.map((name) =>
            packedDecoderWgsl(shape.format as 'q8_0', { buffer: name, prefix: `${name}_` }),
          )
        : []),
    ].join('\n'),
    body: lines.join('\n'),
  });
  return shape.subgroups ? `enable subgroups;\n${source}` : source;
}

/**
 * The 4 weight values at vec4 index `at` (row * K/4 + step): one vec4 load for f32, two words of
 * two halves each for f16 (unpack2x16float) and bf16 (the high 16 bits of an f32).
 */
