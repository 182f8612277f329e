import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import { sameShape } from '../../tensor/shape.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange, forEachChunk } from '../shared/chunks.js';
import {
  assertFloat,
  assertSameDevice,
  computeType,
  loadF32,
  storeAs,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource, workgroupsFor } from '../shared/wgsl.js';

export interface AdamWOptions {
  /** Learning rate. */
  lr: number;
  /** The step number, counted from 1 (after this update), used for bias correction. */
  step: number;
  /** Decay of the first moment (default 0.9). */
  beta1?: number;
  /** Decay of the second moment (default 0.999). */
  beta2?: number;
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01, as torch.optim.AdamW). */
  weightDecay?: number;
}

const FIELDS = [
  { name: 'n', type: 'u32' as const },
  { name: 'decay', type: 'f32' as const },
  { name: 'beta1', type: 'f32' as const },
  { name: 'beta2', type: 'f32' as const },
  { name: 'step_size', type: 'f32' as const },
  { name: 'correction2_sqrt', type: 'f32' as const },
  { name: 'eps', type: 'f32' as const },
];

/**
 * One fused, in-place AdamW update, exactly torch.optim.AdamW (amsgrad off, maximize off):
 *
 *     param = param * (1 - lr * weightDecay)
 *     m = m + (1 - beta1) * (grad - m)          (m.lerp_(grad, 1 - beta1))
 *     v = beta2 * v + (1 - beta2) * grad * grad
 *     stepSize = lr / (1 - beta1^step)
 *     denom = sqrt(v) / sqrt(1 - beta2^step) + eps
 *     param = param - stepSize * m / denom
 *
 * Bias corrections are computed on the host in float64; the update runs in f32 (f16 tensors
 * are widened and rounded on store). `param`, `grad`, `m` and `v` share one shape; chunked
 * tensors (larger than one binding) are updated chunk by chunk, so all four must be split at
 * the same rows (same dtype sizes, or small enough to be unsplit). One dispatch per chunk.
 */
export function adamwStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, options: AdamWOptions): void {
  const op = 'adamwStep';
  const named = checkAdamWTensors(op, param, grad, m, v);
  const values = adamwValues(op, options);
  const device = param.device;
  const workgroup = device.tuning.elementwiseWorkgroup;
  const types = named.map(([, t]) => t.dtype);
  const tensors = named.map(([, t]) => t);
  const names = named.map(([what]) => what);
  forEachChunk(
    `${op} (use one dtype size for all four)`,
    tensors,
    (chunks) => {
      const chunk = chunks[0];
      const width = chunk.elements % 4 === 0 ? 4 : 1;
      const units = chunk.elements / width;
      device.dispatch({
        key: `${KERNELS.adamw}:${types.join(',')}:${width}:${workgroup}`,
        source: () => adamwSource(types, width, workgroup),
        bindings: chunks.map((c, i) => chunkRange(c, tensors[i].storage.bytesPerElement)),
        uniforms: { fields: FIELDS, values: { n: units, ...values } },
        workgroups: grid(workgroupsFor(units, workgroup), device.maxWorkgroupsPerDimension),
      });
    },
    names,
  );
}

/** Checks one update's four tensors (float, one device and shape, distinct buffers); returns them named. */
export function checkAdamWTensors(
  op: string,
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
): [string, Tensor][] {
  const named: [string, Tensor][] = [
    ['param', param],
    ['grad', grad],
    ['m', m],
    ['v', v],
  ];
  for (const [what, t] of named) {
    assertFloat(op, t, what);
    assertSameDevice(op, param, t);
    if (!sameShape(t.shape, param.shape)) {
      throw new TensorError(
        `${op}: ${what} ${t.describe()} does not have the shape of param ${param.describe()}`,
      );
    }
  }
  for (let i = 0; i < named.length; i++) {
    for (let k = i + 1; k < named.length; k++) {
      if (named[i][1].storage === named[k][1].storage) {
        throw new TensorError(
          `${op}: ${named[i][0]} and ${named[k][0]} share one buffer; they must be distinct tensors`,
        );
      }
    }
  }
  return named;
}

/** The kernel's scalars for these options, after checking them (bias corrections in float64). */
export function adamwValues(
  op: string,
  options: AdamWOptions,
): { decay: number; beta1: number; beta2: number; step_size: number; correction2_sqrt: number; eps: number } {
  const { lr, step } = options;
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0.01;
  if (!Number.isInteger(step) || step < 1)
    throw new TensorError(`${op}: step ${step} must be an integer >= 1`);
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
    throw new TensorError(`${op}: betas (${beta1}, ${beta2}) must be in [0, 1)`);
  }
  if (!Number.isFinite(lr) || !Number.isFinite(weightDecay) || !(eps >= 0)) {
    throw new TensorError(
      `${op}: lr ${lr}, weightDecay ${weightDecay} and eps ${eps} must be finite (eps >= 0)`,
    );
  }
  return {
    decay: 1 - lr * weightDecay,
    beta1,
    beta2,
    step_size: lr / (1 - beta1 ** step),
    correction2_sqrt: Math.sqrt(1 - beta2 ** step),
    eps,
  };
}

function adamwSource(types: DType[], width: 1 | 4, workgroup: number): string {
  const [paramType, gradType, mType, vType] = types;
  return kernelSource({
    storage: [
      { name: 'param', type: vectorType(paramType, width), access: 'read_write' },
      { name: 'grad', type: vectorType(gradType, width), access: 'read' },
      { name: 'm', type: vectorType(mType, width), access: 'read_write' },
      { name: 'v', type: vectorType(vType, width), access: 'read_write' },
    ],
    uniforms: FIELDS,
    workgroupSize: workgroup,
    body: `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  let g = ${loadF32('grad', 'index', width)};
  let first = ${loadF32('m', 'index', width)};
  let new_m = first + (1.0 - params.beta1) * (g - first);
  let new_v = params.beta2 * ${loadF32('v', 'index', width)} + (1.0 - params.beta2) * g * g;
  let denom = sqrt(new_v) / params.correction2_sqrt + params.eps;
  let decayed = ${loadF32('param', 'index', width)} * params.decay;
  let updated: ${computeType(width)} = decayed - params.step_size * new_m / denom;
  m[index] = ${storeAs(mType, 'new_m', width)};
  v[index] = ${storeAs(vType, 'new_v', width)};
  param[index] = ${storeAs(paramType, 'updated', width)};`,
  });
}
