import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange, forEachChunk } from '../shared/chunks.js';
import { loadF32, storeAs, vectorType } from '../shared/row-kernel.js';
import { kernelSource, type StorageBinding, workgroupsFor } from '../shared/wgsl.js';
import { type AdamWOptions, adamwValues, checkAdamWTensors } from './adamw.js';

/** One tensor's update in a multi-tensor AdamW step: its own learning rate and weight decay. */
export interface AdamWUpdate {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  lr: number;
  /** Decoupled weight decay (default 0.01, as torch.optim.AdamW). */
  weightDecay?: number;
}

export interface AdamWStepsOptions extends Omit<AdamWOptions, 'lr' | 'weightDecay'> {
  /**
   * Every gradient is multiplied by this before the update (default 1): gradient clipping's
   * factor min(1, maxNorm / (norm + 1e-6)) computed on the host, instead of a pass that rescales
   * the gradients in place.
   */
  gradScale?: number;
}

/** Tensors one dispatch updates at most (each binds four buffers: param, grad, m, v). */
const MAX_PER_DISPATCH = 4;

const FIELDS = [
  { name: 'count', type: 'u32' as const },
  { name: 'beta1', type: 'f32' as const },
  { name: 'beta2', type: 'f32' as const },
  { name: 'correction2_sqrt', type: 'f32' as const },
  { name: 'eps', type: 'f32' as const },
  { name: 'grad_scale', type: 'f32' as const },
  // Per piece: first workgroup, units, then decay and step size as f32 bits.
  { name: 'pieces', type: `array<vec4u,${MAX_PER_DISPATCH}>` as const },
];

interface Piece {
  ranges: BufferRange[];
  types: DType[];
  width: 1 | 4;
  units: number;
  decay: number;
  stepSize: number;
}

/**
 * AdamW over many tensors in few dispatches: the same update as adamwStep (torch.optim.AdamW),
 * with up to four tensors (the same dtypes and vector width) per dispatch, each with its own
 * learning rate and weight decay (parameter groups), and an optional factor on every gradient
 * (clipping). Chunked tensors contribute one piece per chunk.
 */
export function adamwSteps(updates: readonly AdamWUpdate[], options: AdamWStepsOptions): void {
  const op = 'adamwSteps';
  if (updates.length === 0) return;
  const gradScale = options.gradScale ?? 1;
  if (!Number.isFinite(gradScale)) throw new TensorError(`${op}: gradScale ${gradScale} must be finite`);
  const device = updates[0].param.device;
  const groups = new Map<string, Piece[]>();
  let common: ReturnType<typeof adamwValues> | null = null;
  updates.forEach((update, index) => {
    const where = `${op} (tensor ${index}, ${update.param.describe()})`;
    const named = checkAdamWTensors(where, update.param, update.grad, update.m, update.v);
    if (update.param.device !== device) throw new TensorError(`${where}: tensors live on different devices`);
    const values = adamwValues(where, { ...options, lr: update.lr, weightDecay: update.weightDecay });
    common ??= values;
    const tensors = named.map(([, t]) => t);
    const types = tensors.map((t) => t.dtype);
    forEachChunk(
      `${where} (use one dtype size for all four)`,
      tensors,
      (chunks) => {
        const elements = chunks[0].elements;
        if (elements === 0) return;
        const width = elements % 4 === 0 ? 4 : 1;
        const key = `${types.join(',')}:${width}`;
        const piece: Piece = {
          ranges: chunks.map((c, i) => chunkRange(c, tensors[i].storage.bytesPerElement)),
          types,
          width,
          units: elements / width,
          decay: values.decay,
          stepSize: values.step_size,
        };
        groups.set(key, [...(groups.get(key) ?? []), piece]);
      },
      named.map(([what]) => what),
    );
  });
  if (!common) return;
  const { beta1, beta2, correction2_sqrt, eps } = common as ReturnType<typeof adamwValues>;
  const workgroup = device.tuning.elementwiseWorkgroup;
  const perDispatch = Math.max(
    1,
    Math.min(MAX_PER_DISPATCH, Math.floor(device.gpu.limits.maxStorageBuffersPerShaderStage / 4)),
  );
  const bits = new DataView(new ArrayBuffer(4));
  const f32Bits = (value: number) => {
    bits.setFloat32(0, value, true);
    return bits.getUint32(0, true);
  };
  for (const pieces of groups.values()) {
    for (let start = 0; start < pieces.length; start += perDispatch) {
      const pack = pieces.slice(start, start + perDispatch);
      const table: number[] = [];
      let workgroups = 0;
      for (const piece of pack) {
        table.push(workgroups, piece.units, f32Bits(piece.decay), f32Bits(piece.stepSize));
        workgroups += workgroupsFor(piece.units, workgroup);
      }
      while (table.length < 4 * MAX_PER_DISPATCH) table.push(0);
      const { types, width } = pack[0];
      device.dispatch({
        key: `${KERNELS.adamw}:multi:${types.join(',')}:${width}:${pack.length}:${workgroup}`,
        source: () => multiSource(types, width, pack.length, workgroup),
        bindings: pack.flatMap((piece) => piece.ranges),
        uniforms: {
          fields: FIELDS,
          values: {
            count: pack.length,
            beta1,
            beta2,
            correction2_sqrt,
            eps,
            grad_scale: gradScale,
            pieces: table,
          },
        },
        workgroups: grid(workgroups, device.maxWorkgroupsPerDimension),
      });
    }
  }
}

/** One kernel over `count` tensors: a workgroup finds its piece, then updates WG units of it. */
function multiSource(types: DType[], width: 1 | 4, count: number, workgroup: number): string {
  const [paramType, gradType, mType, vType] = types;
  const storage: StorageBinding[] = [];
  const branches: string[] = [];
  for (let i = 0; i < count; i++) {
    storage.push(
      { name: `param_${i}`, type: vectorType(paramType, width), access: 'read_write' },
      { name: `grad_${i}`, type: vectorType(gradType, width), access: 'read' },
      { name: `m_${i}`, type: vectorType(mType, width), access: 'read_write' },
      { name: `v_${i}`, type: vectorType(vType, width), access: 'read_write' },
    );
    branches.push(`
  if (piece == ${i}u) {
    let g = ${loadF32(`grad_${i}`, 'index', width)} * params.grad_scale;
    let first = ${loadF32(`m_${i}`, 'index', width)};
    let new_m = first + (1.0 - params.beta1) * (g - first);
    let new_v = params.beta2 * ${loadF32(`v_${i}`, 'index', width)} + (1.0 - params.beta2) * g * g;
    let denom = sqrt(new_v) / params.correction2_sqrt + params.eps;
    let updated = ${loadF32(`param_${i}`, 'index', width)} * decay - step_size * new_m / denom;
    m_${i}[index] = ${storeAs(mType, 'new_m', width)};
    v_${i}[index] = ${storeAs(vType, 'new_v', width)};
    param_${i}[index] = ${storeAs(paramType, 'updated', width)};
  }`);
  }
  return kernelSource({
    storage,
    uniforms: FIELDS,
    workgroupSize: workgroup,
    body: `
  let group = flat_workgroup(wid, nwg);
  var piece = 0u;
  for (var i = 1u; i < params.count; i++) {
    if (group >= params.pieces[i].x) { piece = i; }
  }
  let entry = params.pieces[piece];
  let index = (group - entry.x) * WG + lid.x;
  if (index >= entry.y) { return; }
  let decay = bitcast<f32>(entry.z);
  let step_size = bitcast<f32>(entry.w);${branches.join('')}`,
  });
}
