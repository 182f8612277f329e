import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { fillRange } from '../fill/fill.js';
import { KERNELS } from '../names.js';
import { chunkRange } from '../shared/chunks.js';
import {
  assertFloat,
  blockedSum,
  loadF32,
  NEG_INF,
  rowHelpers,
  rowWorkgroupFor,
  splitAtAxis,
  storeAs,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource, type StorageBinding, workgroupsFor } from '../shared/wgsl.js';

export type ReduceOp = 'sum' | 'mean' | 'max' | 'argmax';

export interface ReduceOptions {
  /** Keep the reduced axis as a dimension of size 1 (default false). */
  keepDims?: boolean;
}

type Kind = 'sum' | 'max' | 'argmax';

/** Axes shorter than this are reduced one output per invocation rather than one per workgroup. */
const ROW_KERNEL_MIN_LENGTH = 64;
/** Fewest elements (or vec4s) one invocation reduces in a segment when an axis is split. */
const MIN_PER_INVOCATION = 64;

const FIELDS = [
  { name: 'outer', type: 'u32' as const },
  { name: 'length', type: 'u32' as const },
  { name: 'inner', type: 'u32' as const },
  { name: 'splits', type: 'u32' as const },
  { name: 'segment', type: 'u32' as const },
  { name: 'out_offset', type: 'u32' as const },
  { name: 'scale', type: 'f32' as const },
];

/** What one pass of a reduction reads and writes; every field changes the WGSL. */
interface PassVariant {
  kind: Kind;
  /** 'row': a workgroup per (row, segment), axis contiguous; 'column': an invocation per output. */
  layout: 'row' | 'column';
  width: 1 | 4;
  inputType: DType;
  /** Later argmax passes read the winning indices of the previous pass. */
  readsIndices: boolean;
  /** dtype of the values written; null for the last argmax pass, which writes only indices. */
  valueType: DType | null;
  writesIndices: boolean;
  workgroup: number;
}

/**
 * Sum over one axis (or over all elements when `axis` is omitted or null). f16 tensors are summed
 * in f32; long axes are summed in blocks with compensation, so a sum of 10^6 values keeps ~1e-6
 * relative accuracy. Empty axis: 0.
 */
export function sum(x: Tensor, axis?: number | null, options: ReduceOptions = {}): Tensor {
  return reduce('sum', x, axis, options);
}

/** Mean over one axis (or all elements), summed as in `sum`. Empty axis: NaN. */
export function mean(x: Tensor, axis?: number | null, options: ReduceOptions = {}): Tensor {
  return reduce('mean', x, axis, options);
}

/** Maximum over one axis (or all elements). Results for NaN inputs are unspecified. */
export function max(x: Tensor, axis?: number | null, options: ReduceOptions = {}): Tensor {
  return reduce('max', x, axis, options);
}

/**
 * Index (i32) of the maximum along one axis, the first one on ties; over all elements (a flat
 * index) when `axis` is omitted or null. Results for NaN inputs are unspecified.
 */
export function argmax(x: Tensor, axis?: number | null, options: ReduceOptions = {}): Tensor<'i32'> {
  return reduce('argmax', x, axis, options) as Tensor<'i32'>;
}

/**
 * Reduces an f32 or f16 tensor over one axis, viewed as [outer, axis, inner]. A contiguous axis
 * (inner = 1) of 64 or more elements takes a workgroup per row with a tree reduction; other
 * layouts take an invocation per output. When there are few outputs and the axis is long, the
 * axis is cut into segments reduced in parallel and the partial results are reduced again.
 * A tensor split in chunks (above one binding) can be reduced along its last axis or entirely
 * (except a flat argmax).
 */
export function reduce(op: ReduceOp, x: Tensor, axis?: number | null, options: ReduceOptions = {}): Tensor {
  assertFloat(op, x);
  const device = x.device;
  const all = axis === undefined || axis === null;
  const split = all ? { axis: -1, outer: 1, length: x.size, inner: 1 } : splitAtAxis(op, x.shape, axis);
  const keepDims = options.keepDims ?? false;
  const shape = x.shape.flatMap((d, i) => {
    if (!all && i !== split.axis) return [d];
    return keepDims ? [1] : [];
  });
  const out = device.empty(shape, op === 'argmax' ? 'i32' : x.dtype);
  if (out.size === 0) return out;
  if (split.length === 0) {
    if (op === 'max' || op === 'argmax') {
      out.dispose();
      throw new TensorError(`${op}: the reduced axis of ${x.describe()} is empty`);
    }
    return fillRange(out, op === 'mean' ? Number.NaN : 0, 0);
  }
  const kind: Kind = op === 'mean' ? 'sum' : op;
  const scale = op === 'mean' ? 1 / split.length : 1;
  if (!x.chunked) {
    runPasses(kind, { range: x.binding(op), dtype: x.dtype }, split, out, scale, 0);
    return out;
  }
  // A chunked tensor holds whole rows (of the last axis) per chunk: reduce the rows of each
  // chunk, then, for a full reduction, the row results.
  const rowLength = x.shape[x.rank - 1];
  if (!all && split.inner !== 1) {
    out.dispose();
    throw new TensorError(
      `${op}: ${x.describe()} is split in ${x.chunks.length} chunks of whole rows; only its last axis or all elements can be reduced`,
    );
  }
  if (all && kind === 'argmax') {
    out.dispose();
    throw new TensorError(
      `${op}: a flat argmax over ${x.describe()}, split in chunks, is not supported; use an axis`,
    );
  }
  const rows = x.size / rowLength;
  const rowResults = all ? device.empty([rows], 'f32') : out;
  for (const chunk of x.chunks) {
    const chunkRows = chunk.elements / rowLength;
    const range = chunkRange(chunk, x.storage.bytesPerElement);
    const view = { outer: chunkRows, length: rowLength, inner: 1 };
    runPasses(
      kind,
      { range, dtype: x.dtype },
      view,
      rowResults,
      all ? 1 : scale,
      chunk.elementOffset / rowLength,
    );
  }
  if (all) {
    const view = { outer: 1, length: rows, inner: 1 };
    runPasses(kind, { range: rowResults.binding(op), dtype: 'f32' }, view, out, scale, 0);
    rowResults.dispose();
  }
  return out;
}

/**
 * Records the passes of one reduction of `input`, viewed as [outer, length, inner], into `out`
 * (values, or indices for argmax) at element `outOffset`; each result is multiplied by `scale`.
 */
function runPasses(
  kind: Kind,
  input: { range: BufferRange; dtype: DType },
  view: { outer: number; length: number; inner: number },
  out: Tensor,
  scale: number,
  outOffset: number,
): void {
  const device = out.device;
  const { outer, inner } = view;
  const columnWorkgroup = device.tuning.elementwiseWorkgroup;
  const target = device.tuning.reduceSplitWorkgroups;
  const temporaries: Tensor[] = [];
  let source = input;
  let indices: Tensor | null = null;
  let length = view.length;
  for (;;) {
    const layout = inner === 1 && length >= ROW_KERNEL_MIN_LENGTH ? 'row' : 'column';
    const width = layout === 'row' && kind !== 'argmax' && length % 4 === 0 ? 4 : 1;
    const units = length / width;
    const workgroup = layout === 'row' ? rowWorkgroupFor(device, units) : columnWorkgroup;
    const maxSplits = Math.floor(units / (MIN_PER_INVOCATION * (layout === 'row' ? workgroup : 1)));
    const wanted = Math.ceil(layout === 'row' ? target / outer : (target * workgroup) / (outer * inner));
    const segment = Math.ceil(units / Math.max(1, Math.min(maxSplits, wanted)));
    const splits = Math.ceil(units / segment);
    const final = splits === 1;
    const partials = outer * splits * inner;
    const values = final ? (kind === 'argmax' ? null : out) : device.empty([partials], 'f32');
    const winners = kind === 'argmax' ? (final ? out : device.empty([partials], 'i32')) : null;
    if (!final) temporaries.push(values!, ...(winners ? [winners] : []));
    const variant: PassVariant = {
      kind,
      layout,
      width,
      inputType: source.dtype,
      readsIndices: indices !== null,
      valueType: values?.dtype ?? null,
      writesIndices: winners !== null,
      workgroup,
    };
    const bindings = [
      source.range,
      ...(indices ? [indices] : []),
      ...(values ? [values] : []),
      ...(winners ? [winners] : []),
    ];
    device.dispatch({
      key: `${KERNELS.reduce}:${kind}:${layout}:${width}:${variant.inputType}:${variant.readsIndices}:${variant.valueType}:${variant.writesIndices}:${workgroup}`,
      source: () => reduceSource(variant),
      bindings,
      uniforms: {
        fields: FIELDS,
        values: {
          outer,
          length: units,
          inner,
          splits,
          segment,
          out_offset: final ? outOffset : 0,
          scale: final ? scale : 1,
        },
      },
      workgroups: grid(
        layout === 'row' ? outer * splits : workgroupsFor(partials, workgroup),
        device.maxWorkgroupsPerDimension,
      ),
    });
    if (final) break;
    source = { range: values!.binding(), dtype: 'f32' };
    indices = winners;
    length = splits;
  }
  for (const t of temporaries) t.dispose();
}

const ARGMAX_HELPERS = `
struct Best { value: f32, index: i32 }
// Keeps the larger value; on equal values, the smaller index (the first occurrence).
fn better(a: Best, b: Best) -> Best {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) { return b; }
  return a;
}
var<workgroup> best_values: array<f32, WG>;
var<workgroup> best_indices: array<i32, WG>;
fn workgroup_argmax(value: Best, lane: u32) -> Best {
  best_values[lane] = value.value;
  best_indices[lane] = value.index;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      let merged = better(Best(best_values[lane], best_indices[lane]),
                          Best(best_values[lane + stride], best_indices[lane + stride]));
      best_values[lane] = merged.value;
      best_indices[lane] = merged.index;
    }
    workgroupBarrier();
  }
  let result = Best(best_values[0], best_indices[0]);
  workgroupBarrier();
  return result;
}`;

function reduceSource(variant: PassVariant): string {
  const { kind, layout, width } = variant;
  const storage: StorageBinding[] = [
    { name: 'input', type: vectorType(variant.inputType, width), access: 'read' },
  ];
  if (variant.readsIndices) storage.push({ name: 'input_indices', type: 'i32', access: 'read' });
  if (variant.valueType) storage.push({ name: 'values', type: variant.valueType, access: 'read_write' });
  if (variant.writesIndices) storage.push({ name: 'indices', type: 'i32', access: 'read_write' });

  const row = layout === 'row';
  // Position of element `j` of the reduced axis (in vector units for the row layout).
  const at = (j: string) => (row ? `base + ${j}` : `base + ${j} * params.inner`);
  const first = row ? 'start + lid.x' : 'start';
  const step = row ? 'WG' : '1u';
  const output = row ? 'w' : 'index';
  const header = row
    ? `
  let w = flat_workgroup(wid, nwg);
  if (w >= params.outer * params.splits) { return; }
  let segment = w % params.splits;
  let base = (w / params.splits) * params.length;`
    : `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.outer * params.splits * params.inner) { return; }
  let k = index % params.inner;
  let rest = index / params.inner;
  let segment = rest % params.splits;
  let base = (rest / params.splits) * params.length * params.inner + k;`;
  const range = `
  let start = segment * params.segment;
  let end = min(start + params.segment, params.length);`;

  let body: string;
  let result: string;
  if (kind === 'sum') {
    body = blockedSum({
      resultName: 'partial',
      prefix: 'sum',
      first,
      end: 'end',
      step,
      term: (j) => loadF32('input', at(j), width),
      width,
    });
    result = row ? 'workgroup_sum(partial, lid.x)' : 'partial';
  } else if (kind === 'max') {
    body = `
  var partial = ${NEG_INF};
  for (var j = ${first}; j < end; j += ${step}) { partial = max(partial, horizontal_max(${loadF32('input', at('j'), width)})); }`;
    result = row ? 'workgroup_max(partial, lid.x)' : 'partial';
  } else {
    const candidate = variant.readsIndices ? `input_indices[${at('j')}]` : 'i32(j)';
    body = `
  var partial = Best(${NEG_INF}, 2147483647);
  for (var j = ${first}; j < end; j += ${step}) {
    partial = better(partial, Best(f32(input[${at('j')}]), ${candidate}));
  }`;
    result = row ? 'workgroup_argmax(partial, lid.x)' : 'partial';
  }
  const writes: string[] = [];
  const resultValue = kind === 'argmax' ? 'result.value' : 'result * params.scale';
  if (variant.valueType)
    writes.push(`values[params.out_offset + ${output}] = ${storeAs(variant.valueType, resultValue, 1)};`);
  if (variant.writesIndices) writes.push(`indices[params.out_offset + ${output}] = result.index;`);
  const write = row ? `  if (lid.x == 0u) {\n    ${writes.join('\n    ')}\n  }` : `  ${writes.join('\n  ')}`;

  return kernelSource({
    storage,
    uniforms: FIELDS,
    workgroupSize: variant.workgroup,
    helpers: rowHelpers(width) + (kind === 'argmax' ? ARGMAX_HELPERS : ''),
    body: `${header}${range}${body}
  let result = ${result};
${write}`,
  });
}
