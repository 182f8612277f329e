import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { assertFloat, assertSameDevice, vectorType } from '../shared/row-kernel.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';
import type { CrossEntropyBackwardOptions } from './backward-reference.js';

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'row_items', type: 'u32' as const },
  { name: 'first_row', type: 'u32' as const },
  { name: 'vocab', type: 'u32' as const },
  { name: 'ignore_index', type: 'i32' as const },
  { name: 'smoothing', type: 'f32' as const },
];

const REDUCTIONS = { mean: 0, sum: 1, none: 2 } as const;

/**
 * Gradient of crossEntropy with respect to logits [..., vocab], from the forward's per-row
 * logSumExp and tokenCount: with p = exp(logits - lse) and s = labelSmoothing,
 *   dlogits[r, v] = (p[r, v] - (1 - s) [v == target[r]] - s / vocab) * scale_r,
 * scale_r = 0 where target[r] == ignoreIndex, else grad / tokenCount ('mean'; 0 when no row
 * counts), grad ('sum') or grad[r] ('none'). The probabilities are recomputed elementwise, one
 * read of the logits and one write, never a softmax tensor. Logits split in chunks (a classifier
 * larger than one binding) are handled chunk by chunk. Memory-bound.
 */
export function crossEntropyBackward(
  logits: Tensor,
  targets: Tensor,
  logSumExp: Tensor,
  tokenCount: Tensor,
  grad: Tensor,
  options: CrossEntropyBackwardOptions = {},
): Tensor {
  const op = 'crossEntropyBackward';
  assertFloat(op, logits, 'logits');
  for (const t of [targets, logSumExp, tokenCount, grad]) assertSameDevice(op, logits, t);
  const reduction = options.reduction ?? 'mean';
  const rowShape = logits.shape.slice(0, -1);
  const describe = () =>
    `${op}(logits ${formatShape(logits.shape)}, targets ${targets.describe()}, logSumExp ${logSumExp.describe()}, grad ${grad.describe()})`;
  if (targets.dtype !== 'i32' || !sameShape(targets.shape, rowShape)) {
    throw new TensorError(`${describe()}: targets must be i32 with the logits' shape minus the last axis`);
  }
  if (logSumExp.dtype !== 'f32' || logSumExp.size !== targets.size || tokenCount.size !== 1) {
    throw new TensorError(`${describe()}: logSumExp must be f32 per row and tokenCount one f32 value`);
  }
  const gradSize = reduction === 'none' ? targets.size : 1;
  if (grad.dtype !== 'f32' || grad.size !== gradSize) {
    throw new TensorError(
      `${describe()}: grad must be f32 with ${gradSize} element(s) for reduction '${reduction}'`,
    );
  }
  const device = logits.device;
  const vocab = logits.shape[logits.rank - 1];
  const out = device.empty(logits.shape, logits.dtype);
  if (out.size === 0) return out;
  const width: 1 | 4 = vocab % 4 === 0 ? 4 : 1;
  const wg = device.tuning.elementwiseWorkgroup;
  const storeType = vectorType(logits.dtype, width);
  const key = `${KERNELS.crossEntropyBackward}:${logits.dtype}:${width}:${reduction}:${wg}`;
  logits.chunks.forEach((chunk, c) => {
    const items = chunk.elements / width;
    device.dispatch({
      key,
      source: () =>
        kernelSource({
          storage: [
            { name: 'logits', type: storeType, access: 'read' },
            { name: 'targets', type: 'i32', access: 'read' },
            { name: 'log_sum_exp', type: 'f32', access: 'read' },
            // 'auto' layouts drop unused bindings: the count is bound only where 'mean' reads it.
            ...(reduction === 'mean'
              ? [{ name: 'token_count', type: 'f32' as const, access: 'read' as const }]
              : []),
            { name: 'grad', type: 'f32', access: 'read' },
            { name: 'out', type: storeType, access: 'read_write' },
          ],
          uniforms: FIELDS,
          workgroupSize: wg,
          body: body(logits.dtype, width, reduction),
        }),
      bindings: [
        { buffer: chunk.buffer, offset: 0, size: chunk.buffer.size },
        targets.binding(op),
        logSumExp.binding(op),
        ...(reduction === 'mean' ? [tokenCount.binding(op)] : []),
        grad.binding(op),
        { buffer: out.chunks[c].buffer, offset: 0, size: out.chunks[c].buffer.size },
      ],
      uniforms: {
        fields: FIELDS,
        values: {
          n: items,
          row_items: vocab / width,
          first_row: chunk.elementOffset / vocab,
          vocab,
          ignore_index: options.ignoreIndex ?? -100,
          smoothing: options.labelSmoothing ?? 0,
        },
      },
      workgroups: grid(workgroupsFor(items, wg), device.maxWorkgroupsPerDimension),
    });
  });
  return out;
}

function body(dtype: string, width: 1 | 4, reduction: keyof typeof REDUCTIONS): string {
  const type = width === 4 ? 'vec4<f32>' : 'f32';
  const scale =
    reduction === 'none'
      ? 'grad[row]'
      : reduction === 'sum'
        ? 'grad[0]'
        : 'select(0.0, grad[0] / token_count[0], token_count[0] > 0.0)';
  const columns = width === 4 ? 'vec4<u32>(column, column + 1u, column + 2u, column + 3u)' : 'column';
  const label = width === 4 ? 'vec4<u32>(u32(label))' : 'u32(label)';
  const store = dtype === 'f32' ? 'value' : `${width === 4 ? `vec4<${dtype}>` : dtype}(value)`;
  return `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  let local_row = index / params.row_items;
  let row = params.first_row + local_row;
  let column = (index % params.row_items) * ${width}u;
  let label = targets[row];
  if (label == params.ignore_index) { out[index] = ${width === 4 ? `vec4<${dtype}>(0.0)` : `${dtype}(0.0)`}; return; }
  let p = exp(${type}(logits[index]) - log_sum_exp[row]);
  let hit = select(${type}(0.0), ${type}(1.0 - params.smoothing), ${columns} == ${label});
  let value = (p - hit - params.smoothing / f32(params.vocab)) * ${scale};
  out[index] = ${store};`;
}
