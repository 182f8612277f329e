import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { KERNELS } from '../names.js';
import { isQuantized } from '../packed-matmul/formats.js';
import { PackedWeight } from '../packed-matmul/packed-weight.js';
import { prefillQuantizedProduct } from './prefill-product-quantized.js';
import { prefillTileChoice } from './prefill-tile-choice.js';
import { type PrefillTileShape, prefillTileSource, tileFmas, tileRowLoads } from './prefill-tile-wgsl.js';
import {
  checkProductInputs,
  type DecodeMatvecOptions,
  loadWeight,
  PRODUCT_FIELDS,
  productBindings,
  productUniforms,
} from './product-inputs.js';

/** What one prefill product kernel computes; everything here is in the pipeline key. */
export interface PrefillProductShape extends PrefillTileShape {
  format: 'f32' | 'f16' | 'bf16';
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
 * the same loop over K. The tile (rows by the prompt's length, columns by the ending, lanes,
 * subgroup loads, workgroup order) is the class's prefill tuning, apart from the training
 * matmul's (prefillTileChoice in prefill-tile-choice.ts).
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
  const tile = prefillTileChoice(
    device,
    swiglu ? 'gated' : epilogue === 'residual' ? 'residual' : 'store',
    rows,
  );
  const { cols, lanes, subgroups } = tile;
  const shape: PrefillProductShape = {
    format,
    // With subgroup loads the tile's rows are a multiple of the lanes (lane l loads rows l, l + lanes, ...).
    rows: tile.rows,
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
    ...(tile.rowTilesInner ? { rowTilesInner: true } : {}),
  };
  const perBlock = lanes * cols;
  const perWeight = swiglu ? [Math.ceil(n[0] / perBlock)] : n.map((v) => Math.ceil(v / perBlock));
  const blocks = perWeight.reduce((a, b) => a + b, 0);
  const rowTiles = Math.ceil(rows / shape.rows);
  if (rowTiles > device.maxWorkgroupsPerDimension)
    throw new TensorError(`prefillProduct: ${rows} rows are more than one dispatch takes`);
  const blockGrid = grid(blocks, device.maxWorkgroupsPerDimension);
  device.dispatch({
    key: prefillProductKey(shape),
    source: () => prefillProductSource(shape),
    bindings: productBindings(options, inputs),
    uniforms: { fields: PRODUCT_FIELDS, values: productUniforms(options, inputs, perWeight) },
    workgroups: shape.rowTilesInner ? [rowTiles, ...blockGrid] : [...blockGrid, rowTiles],
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
    ...(shape.rowTilesInner ? ['rows-inner'] : []),
  ].join(':');
}

/** The 4 weight values at vec4 index `at`: a vec4 load (f32) or two words of two halves (f16, bf16). */
export function prefillProductSource(shape: PrefillProductShape): string {
  return prefillTileSource(shape, {
    type: shape.format === 'f32' ? 'vec4<f32>' : 'u32',
    rowStride: 'params.k4',
    loop: (weight, tile) => {
      const body = ['    for (var s = 0u; s < params.k4; s++) {', ...tileRowLoads(tile, '      ')];
      for (let p = 0; p < tile.sums; p++) {
        const at = (j: number) =>
          `w_at_${j} + ${shape.stacked && p === 1 ? 'params.n0 * params.k4 + ' : ''}s`;
        for (let j = 0; j < shape.cols; j++) {
          const value = loadWeight(shape.format, tile.nameOf(p, weight), at(j));
          body.push(`      let b_${p}_${j} = ${value}${shape.norm ? ' * gain' : ''};`);
        }
      }
      body.push(...tileFmas(tile, '      '), '    }');
      return body.join('\n');
    },
  });
}
