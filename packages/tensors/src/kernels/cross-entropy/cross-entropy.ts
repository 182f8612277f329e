import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { formatShape, sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange } from '../shared/chunks.js';
import {
  assertFloat,
  assertSameDevice,
  blockedSum,
  combineOnlineStatistics,
  computeType,
  loadF32,
  NAN,
  onlineStatistics,
  rowHelpers,
  rowWorkgroupFor,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource } from '../shared/wgsl.js';

export type LossReduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** Rows whose target equals this are skipped: loss 0, not counted (default -100, as PyTorch). */
  ignoreIndex?: number;
  /** 'mean' over counted rows (0 when none is counted), 'sum', or 'none' (per row). Default 'mean'. */
  reduction?: LossReduction;
  /** PyTorch's label_smoothing in [0, 1]: the target distribution is (1 - s) one-hot + s / vocab. */
  labelSmoothing?: number;
}

export interface CrossEntropyResult {
  /** f32: a scalar (shape []) for 'mean' and 'sum', the targets' shape for 'none'. */
  loss: Tensor<'f32'>;
  /** f32, the targets' shape: log(sum(exp(logits))) of every row, ignored rows included. */
  logSumExp: Tensor<'f32'>;
  /** f32 scalar: how many rows were counted (target != ignoreIndex); exact below 2^24 rows. */
  tokenCount: Tensor<'f32'>;
}

const ROW_FIELDS = [
  { name: 'rows', type: 'u32' as const },
  { name: 'row_offset', type: 'u32' as const },
  { name: 'length', type: 'u32' as const },
  { name: 'vocab', type: 'u32' as const },
  { name: 'ignore_index', type: 'i32' as const },
  { name: 'smoothing', type: 'f32' as const },
];

const TOTAL_FIELDS = [
  { name: 'rows', type: 'u32' as const },
  { name: 'ignore_index', type: 'i32' as const },
  { name: 'mean', type: 'u32' as const },
];

/**
 * Cross-entropy of `logits` [..., vocab] (f32 or f16) against i32 `targets` [...], fused with
 * log-softmax: the log-probabilities are never stored. Per row, with lse = log(sum(exp(x))):
 * loss = (1 - s) * (lse - x[target]) + s * (lse - mean(x)), s = labelSmoothing, as PyTorch's
 * F.cross_entropy. Rows whose target is ignoreIndex give 0 and are not counted. A target outside
 * [0, vocab) that is not ignoreIndex is not validated on the host (that would need a readback):
 * its row's loss is NaN, which makes a 'mean' or 'sum' NaN too. Also returns the per-row
 * log-sum-exp and the counted-row total that the backward pass needs. Each row is read once
 * (online max-and-sum), then one workgroup adds the row losses. Two dispatches (one more
 * per extra chunk when the logits exceed one binding and are split in chunks of whole rows).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): CrossEntropyResult {
  const op = 'crossEntropy';
  assertFloat(op, logits, 'logits');
  assertSameDevice(op, logits, targets);
  const ignoreIndex = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? 'mean';
  const smoothing = options.labelSmoothing ?? 0;
  if (targets.dtype !== 'i32') throw new TensorError(`${op}: targets ${targets.describe()} must be i32`);
  if (logits.rank === 0 || !sameShape(targets.shape, logits.shape.slice(0, -1))) {
    throw new TensorError(
      `${op}: targets ${formatShape(targets.shape)} must have the shape of logits ${formatShape(logits.shape)} without its last axis`,
    );
  }
  const vocab = logits.shape[logits.rank - 1];
  if (vocab === 0)
    throw new TensorError(`${op}: logits ${formatShape(logits.shape)} have an empty vocabulary axis`);
  if (!(smoothing >= 0 && smoothing <= 1))
    throw new TensorError(`${op}: labelSmoothing ${smoothing} is not in [0, 1]`);
  if (!['mean', 'sum', 'none'].includes(reduction)) {
    throw new TensorError(`${op}: reduction ${reduction} is not 'mean', 'sum' or 'none'`);
  }
  if (!Number.isInteger(ignoreIndex))
    throw new TensorError(`${op}: ignoreIndex ${ignoreIndex} is not an integer`);
  const device = logits.device;
  const rows = targets.size;
  const rowLoss = device.empty(targets.shape, 'f32');
  const logSumExp = device.empty(targets.shape, 'f32');
  const tokenCount = device.empty([], 'f32');
  const loss = reduction === 'none' ? rowLoss : device.empty([], 'f32');
  const width = vocab % 4 === 0 ? 4 : 1;
  const workgroup = rowWorkgroupFor(device, vocab / width);
  const smoothed = smoothing > 0;
  // Logits above one binding are split in chunks of whole rows: one dispatch per chunk.
  for (const chunk of rows > 0 ? logits.chunks : []) {
    const chunkRows = chunk.elements / vocab;
    device.dispatch({
      key: `${KERNELS.crossEntropy}:rows:${logits.dtype}:${width}:${smoothed}:${workgroup}`,
      source: () => rowSource(logits.dtype, width, smoothed, workgroup),
      bindings: [chunkRange(chunk, logits.storage.bytesPerElement), targets.binding(op), rowLoss, logSumExp],
      uniforms: {
        fields: ROW_FIELDS,
        values: {
          rows: chunkRows,
          row_offset: chunk.elementOffset / vocab,
          length: vocab / width,
          vocab,
          ignore_index: ignoreIndex,
          smoothing,
        },
      },
      workgroups: grid(chunkRows, device.maxWorkgroupsPerDimension),
    });
  }
  const reduced = reduction !== 'none';
  device.dispatch({
    key: `${KERNELS.crossEntropy}:total:${reduced}:${workgroup}`,
    source: () => totalSource(reduced, workgroup),
    bindings: [rowLoss, targets.binding(op), tokenCount, ...(reduced ? [loss] : [])],
    uniforms: {
      fields: TOTAL_FIELDS,
      values: { rows, ignore_index: ignoreIndex, mean: reduction === 'mean' ? 1 : 0 },
    },
    workgroups: [1],
  });
  if (reduced) rowLoss.dispose();
  return { loss: loss as Tensor<'f32'>, logSumExp, tokenCount };
}

function rowSource(dtype: DType, width: 1 | 4, smoothed: boolean, workgroup: number): string {
  const load = loadF32('logits', 'base + j', width);
  const each = 'for (var j = lid.x; j < params.length; j += WG)';
  const targetLogit = width === 4 ? 'f32(logits[element / 4u][element % 4u])' : 'f32(logits[element])';
  return kernelSource({
    storage: [
      { name: 'logits', type: vectorType(dtype, width), access: 'read' },
      { name: 'targets', type: 'i32', access: 'read' },
      { name: 'row_loss', type: 'f32', access: 'read_write' },
      { name: 'log_sum_exp', type: 'f32', access: 'read_write' },
    ],
    uniforms: ROW_FIELDS,
    workgroupSize: workgroup,
    helpers: rowHelpers(width),
    body: `
  let r = flat_workgroup(wid, nwg);
  if (r >= params.rows) { return; }
  let base = r * params.length;
  var partial_logits = ${computeType(width)}(0.0);${onlineStatistics({
    loop: each,
    load,
    width,
    extra: smoothed ? 'partial_logits += value;' : '',
  })}${combineOnlineStatistics(true)}
  let lse = row_max + log(row_sum);
  ${smoothed ? 'let logit_mean = workgroup_sum(horizontal_sum(partial_logits), lid.x) / f32(params.vocab);' : 'let logit_mean = 0.0;'}
  if (lid.x == 0u) {
    let label = targets[params.row_offset + r];
    var loss = 0.0;
    if (label != params.ignore_index) {
      if (label < 0 || u32(label) >= params.vocab) {
        loss = ${NAN};
      } else {
        let element = r * params.vocab + u32(label);
        let logit = ${targetLogit};
        loss = (1.0 - params.smoothing) * (lse - logit) + params.smoothing * (lse - logit_mean);
      }
    }
    row_loss[params.row_offset + r] = loss;
    log_sum_exp[params.row_offset + r] = lse;
  }`,
  });
}

function totalSource(reduced: boolean, workgroup: number): string {
  return kernelSource({
    storage: [
      { name: 'row_loss', type: 'f32', access: 'read' },
      { name: 'targets', type: 'i32', access: 'read' },
      { name: 'token_count', type: 'f32', access: 'read_write' },
      ...(reduced ? [{ name: 'loss', type: 'f32' as const, access: 'read_write' as const }] : []),
    ],
    uniforms: TOTAL_FIELDS,
    workgroupSize: workgroup,
    helpers: rowHelpers(1),
    body: `${blockedSum({
      resultName: 'partial',
      prefix: 'loss',
      first: 'lid.x',
      end: 'params.rows',
      step: 'WG',
      term: (j) => `row_loss[${j}]`,
      width: 1,
    })}
  var counted = 0u;
  for (var j = lid.x; j < params.rows; j += WG) { counted += select(0u, 1u, targets[j] != params.ignore_index); }
  let total = workgroup_sum(partial, lid.x);
  let count = workgroup_sum(f32(counted), lid.x);
  if (lid.x == 0u) {
    token_count[0] = count;
    ${reduced ? 'loss[0] = select(total, select(0.0, total / count, count > 0.0), params.mean == 1u);' : ''}
  }`,
  });
}
