import type { Device } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { UniformField } from '../../device/uniforms.js';
import type { Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { kernelSource } from '../shared/wgsl.js';

const LANES = 64;

const FIELDS: UniformField[] = [
  { name: 'width', type: 'u32' },
  { name: 'eps', type: 'f32' },
];

/**
 * out[r, :] += RMSNorm(x[r, :]) * weight, for rows x [rows, width] f32: Gemma 2/3's post-attention
 * and post-feed-forward norms, applied to a product's output before it joins the residual stream
 * (the fused decoder's o_proj and down_proj then 'store' into x instead of adding in place).
 * `weight` is the norm's effective weight ((1 + w) for Gemma, precomputed). One workgroup per row.
 */
export function decodeNormAdd(
  device: Device,
  options: { x: Tensor; weight: Tensor; eps: number; out: Tensor },
): void {
  const { x, weight, eps, out } = options;
  const [rows, width] = x.shape;
  if (
    x.rank !== 2 ||
    x.dtype !== 'f32' ||
    out.dtype !== 'f32' ||
    out.rank !== 2 ||
    out.shape[0] !== rows ||
    out.shape[1] !== width ||
    weight.size !== width ||
    weight.dtype !== 'f32'
  )
    throw new TensorError(
      `decodeNormAdd: x ${x.describe()}, weight ${weight.describe()} and out ${out.describe()} do not match`,
    );
  device.dispatch({
    key: `${KERNELS.decode}:norm-add`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'x', type: 'f32', access: 'read' },
          { name: 'weight', type: 'f32', access: 'read' },
          { name: 'out', type: 'f32', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: LANES,
        helpers: `var<workgroup> partial: array<f32, ${LANES}>;`,
        body: `
  let base = wid.x * params.width;
  var squares = 0.0;
  for (var i = lid.x; i < params.width; i += ${LANES}u) { squares += x[base + i] * x[base + i]; }
  partial[lid.x] = squares;
  workgroupBarrier();
  var total = 0.0;
  for (var t = 0u; t < ${LANES}u; t++) { total += partial[t]; }
  let inverse = inverseSqrt(total / f32(params.width) + params.eps);
  for (var i = lid.x; i < params.width; i += ${LANES}u) {
    out[base + i] = out[base + i] + x[base + i] * inverse * weight[i];
  }`,
      }),
    bindings: [x, weight, out],
    uniforms: { fields: FIELDS, values: { width, eps } },
    workgroups: [rows, 1, 1],
  });
}
