import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { KERNELS } from '../names.js';
import { isQuantized } from '../packed-matmul/formats.js';
import { packedDecoderWgsl } from '../packed-matmul/packed-decoders-wgsl.js';
import { prefillTileChoice } from './prefill-tile-choice.js';
import { type PrefillTileShape, prefillTileSource, tileFmas, tileRowLoads } from './prefill-tile-wgsl.js';
import {
  checkProductInputs,
  type DecodeMatvecOptions,
  PRODUCT_FIELDS,
  productBindings,
  productUniforms,
} from './product-inputs.js';

/** What one quantized prefill product kernel computes; everything here is in the pipeline key. */
export interface PrefillQuantizedShape extends PrefillTileShape {
  format: 'q8_0' | 'q4_0' | 'q4_k';
  gelu: boolean;
  dora: boolean[];
  stacked: boolean;
}

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
  const tile = prefillTileChoice(
    device,
    gated ? 'gated' : epilogue === 'residual' ? 'residual' : 'store',
    rows,
  );
  const { cols, lanes, subgroups } = tile;
  const shape: PrefillQuantizedShape = {
    format: format as PrefillQuantizedShape['format'],
    rows: tile.rows,
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
    ...(tile.rowTilesInner ? { rowTilesInner: true } : {}),
  };
  const perBlock = lanes * cols;
  const perWeight = gated ? [Math.ceil(n[0] / perBlock)] : n.map((v) => Math.ceil(v / perBlock));
  const blocks = perWeight.reduce((a, b) => a + b, 0);
  const rowTiles = Math.ceil(rows / shape.rows);
  if (rowTiles > device.maxWorkgroupsPerDimension)
    throw new TensorError(`prefillProduct: ${rows} rows are more than one dispatch takes`);
  const blockGrid = grid(blocks, device.maxWorkgroupsPerDimension);
  device.dispatch({
    key: prefillQuantizedKey(shape),
    source: () => prefillQuantizedSource(shape),
    bindings: productBindings(options, inputs),
    uniforms: { fields: PRODUCT_FIELDS, values: productUniforms(options, inputs, perWeight) },
    workgroups: shape.rowTilesInner ? [rowTiles, ...blockGrid] : [...blockGrid, rowTiles],
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
    ...(shape.rowTilesInner ? ['rows-inner'] : []),
  ].join(':');
}

export function prefillQuantizedSource(shape: PrefillQuantizedShape): string {
  return prefillTileSource(shape, {
    type: 'u32',
    rowStride: 'params.row_bytes',
    helpers: (binding) => packedDecoderWgsl(shape.format, { buffer: binding, prefix: `${binding}_` }),
    loop: (weight, tile) => {
      // Up's rows of a stacked gate/up weight start n rows (bytes) after gate's.
      const at = (p: number, j: number) =>
        shape.stacked && p === 1 ? `w_at_${j} + params.n0 * params.row_bytes` : `w_at_${j}`;
      // Blocks of 32 values (8 vec4 steps) share one scale per weight row: decoded once per block.
      const body = ['    for (var blk = 0u; blk < params.k4 / 8u; blk++) {'];
      for (let p = 0; p < tile.sums; p++)
        for (let j = 0; j < shape.cols; j++)
          body.push(`      let scale_${p}_${j} = ${tile.nameOf(p, weight)}_scale(${at(p, j)}, blk);`);
      body.push('      for (var q = 0u; q < 8u; q++) {', '        let s = blk * 8u + q;');
      body.push(...tileRowLoads(tile, '        '));
      for (let p = 0; p < tile.sums; p++)
        for (let j = 0; j < shape.cols; j++) {
          const quad = `${tile.nameOf(p, weight)}_quad(${at(p, j)}, s * 4u, scale_${p}_${j})`;
          body.push(`        let b_${p}_${j} = ${quad}${shape.norm ? ' * gain' : ''};`);
        }
      body.push(...tileFmas(tile, '        '), '      }', '    }');
      return body.join('\n');
    },
  });
}
