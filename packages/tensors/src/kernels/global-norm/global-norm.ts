import type { Device } from '../../device/device.js';
import { grid } from '../../device/device.js';
import { TensorError } from '../../device/errors.js';
import type { DType } from '../../tensor/dtype.js';
import type { Storage } from '../../tensor/storage.js';
import type { BufferRange, Tensor } from '../../tensor/tensor.js';
import { KERNELS } from '../names.js';
import { chunkRange } from '../shared/chunks.js';
import {
  assertFloat,
  assertSameDevice,
  blockedSum,
  loadF32,
  rowHelpers,
  rowWorkgroupSize,
  storeAs,
  vectorType,
} from '../shared/row-kernel.js';
import { kernelSource, type StorageBinding } from '../shared/wgsl.js';

/** Elements (or vec4s) each invocation handles in one workgroup's block. */
const UNITS_PER_INVOCATION = 32;
/** Most tensor chunks bound to one dispatch (WebGPU guarantees 8 storage bindings per stage). */
const MAX_PIECES = 8;

const PACK_FIELDS = [
  { name: 'pieces', type: `array<vec4u,${MAX_PIECES}>` as const },
  { name: 'count', type: 'u32' as const },
  { name: 'workgroups', type: 'u32' as const },
  { name: 'slot_offset', type: 'u32' as const },
  { name: 'max_norm', type: 'f32' as const },
];

const FINAL_FIELDS = [{ name: 'slots', type: 'u32' as const }];

/** One chunk of one tensor, read `width` elements at a time. */
interface Piece {
  range: BufferRange;
  dtype: DType;
  width: 1 | 4;
  units: number;
}

/** Pieces of one type bound to one dispatch, and the workgroups each one takes. */
interface Pack {
  pieces: Piece[];
  firstWorkgroups: number[];
  workgroups: number;
}

/**
 * The L2 norm over every element of every tensor, sqrt(sum of squares), as a one-element f32
 * tensor (shape []) that stays on the GPU. Each dispatch binds up to 8 tensor chunks of one
 * dtype and writes one partial sum of squares per workgroup into a shared buffer; one last
 * dispatch adds the partials. So a model's gradients take ceil(chunks / 8) + 1 dispatches.
 * Chunked tensors and f16 tensors (squared in f32) are supported. The list must not be empty.
 */
export function globalNorm(tensors: readonly Tensor[]): Tensor<'f32'> {
  const device = checkTensors('globalNorm', tensors);
  if (!device) throw new TensorError('globalNorm: needs at least one tensor to know the device');
  const workgroup = rowWorkgroupSize(device);
  const packs = packPieces(device, tensors, workgroup);
  const slots = packs.reduce((total, pack) => total + pack.workgroups, 0);
  const partials = device.empty([Math.max(slots, 1)], 'f32');
  const norm = device.empty([], 'f32');
  let slotOffset = 0;
  for (const pack of packs) {
    launchPack(device, 'squares', pack, workgroup, [partials], slotOffset, 0);
    slotOffset += pack.workgroups;
  }
  device.dispatch({
    key: `${KERNELS.globalNorm}:total:${workgroup}`,
    source: () =>
      kernelSource({
        storage: [
          { name: 'partials', type: 'f32', access: 'read' },
          { name: 'norm', type: 'f32', access: 'read_write' },
        ],
        uniforms: FINAL_FIELDS,
        workgroupSize: workgroup,
        helpers: rowHelpers(1),
        body: `${blockedSum({
          resultName: 'partial',
          prefix: 'squares',
          first: 'lid.x',
          end: 'params.slots',
          step: 'WG',
          term: (j) => `partials[${j}]`,
          width: 1,
        })}
  let total = workgroup_sum(partial, lid.x);
  if (lid.x == 0u) { norm[0] = sqrt(total); }`,
      }),
    bindings: [partials, norm],
    uniforms: { fields: FINAL_FIELDS, values: { slots } },
    workgroups: [1],
  });
  partials.dispose();
  return norm;
}

/**
 * Scales every tensor in place so that their global norm is at most `maxNorm`, as PyTorch's
 * clip_grad_norm_: factor = min(1, maxNorm / (norm + 1e-6)). The factor is computed on the GPU
 * from the norm, which is never read back. Returns the norm before clipping (f32, shape []).
 * A tensor listed twice (or two views of one storage) is scaled once.
 */
export function clipByGlobalNorm(tensors: readonly Tensor[], maxNorm: number): Tensor<'f32'> {
  if (!(maxNorm >= 0) || !Number.isFinite(maxNorm)) {
    throw new TensorError(`clipByGlobalNorm: maxNorm ${maxNorm} must be a finite number >= 0`);
  }
  const norm = globalNorm(tensors);
  const device = norm.device;
  const seen = new Set<Storage>();
  const unique = tensors.filter((t) => {
    if (seen.has(t.storage)) return false;
    seen.add(t.storage);
    return true;
  });
  const workgroup = rowWorkgroupSize(device);
  for (const pack of packPieces(device, unique, workgroup)) {
    launchPack(device, 'scale', pack, workgroup, [norm], 0, maxNorm);
  }
  return norm;
}

function checkTensors(op: string, tensors: readonly Tensor[]): Device | null {
  if (tensors.length === 0) return null;
  for (const t of tensors) {
    assertFloat(op, t);
    assertSameDevice(op, tensors[0], t);
  }
  return tensors[0].device;
}

/** Groups the chunks of all tensors by storage type into dispatches of at most MAX_PIECES. */
function packPieces(device: Device, tensors: readonly Tensor[], workgroup: number): Pack[] {
  const byType = new Map<string, Piece[]>();
  for (const t of tensors) {
    for (const chunk of t.chunks) {
      if (chunk.elements === 0) continue;
      const width = chunk.elements % 4 === 0 ? 4 : 1;
      const piece: Piece = {
        range: chunkRange(chunk, t.storage.bytesPerElement),
        dtype: t.dtype,
        width,
        units: chunk.elements / width,
      };
      const key = `${t.dtype}:${width}`;
      byType.set(key, [...(byType.get(key) ?? []), piece]);
    }
  }
  const perPack = Math.max(1, Math.min(MAX_PIECES, device.gpu.limits.maxStorageBuffersPerShaderStage - 1));
  const block = workgroup * UNITS_PER_INVOCATION;
  const packs: Pack[] = [];
  for (const pieces of byType.values()) {
    for (let i = 0; i < pieces.length; i += perPack) {
      const group = pieces.slice(i, i + perPack);
      const firstWorkgroups: number[] = [];
      let workgroups = 0;
      for (const piece of group) {
        firstWorkgroups.push(workgroups);
        workgroups += Math.ceil(piece.units / block);
      }
      packs.push({ pieces: group, firstWorkgroups, workgroups });
    }
  }
  return packs;
}

/**
 * One dispatch over a pack. 'squares' writes each workgroup's sum of squares to
 * partials[slot_offset + workgroup]; 'scale' multiplies every element by the clipping factor.
 */
function launchPack(
  device: Device,
  mode: 'squares' | 'scale',
  pack: Pack,
  workgroup: number,
  extra: Tensor[],
  slotOffset: number,
  maxNorm: number,
): void {
  const { dtype, width } = pack.pieces[0];
  const count = pack.pieces.length;
  const pieces = pack.pieces.flatMap((piece, i) => [pack.firstWorkgroups[i], piece.units, 0, 0]);
  device.dispatch({
    key: `${KERNELS.globalNorm}:${mode}:${dtype}:${width}:${count}:${workgroup}`,
    source: () => packSource(mode, dtype, width, count, workgroup),
    bindings: [...extra, ...pack.pieces.map((p) => p.range)],
    uniforms: {
      fields: PACK_FIELDS,
      values: { pieces, count, workgroups: pack.workgroups, slot_offset: slotOffset, max_norm: maxNorm },
    },
    workgroups: grid(pack.workgroups, device.maxWorkgroupsPerDimension),
  });
}

function packSource(
  mode: 'squares' | 'scale',
  dtype: DType,
  width: 1 | 4,
  count: number,
  workgroup: number,
): string {
  const storage: StorageBinding[] = [
    mode === 'squares'
      ? { name: 'partials', type: 'f32', access: 'read_write' }
      : { name: 'norm', type: 'f32', access: 'read' },
  ];
  const functions: string[] = [];
  const cases: string[] = [];
  for (let k = 0; k < count; k++) {
    storage.push({
      name: `piece${k}`,
      type: vectorType(dtype, width),
      access: mode === 'squares' ? 'read' : 'read_write',
    });
    if (mode === 'squares') {
      functions.push(`fn squares${k}(start: u32, end: u32, lane: u32) -> f32 {${blockedSum({
        resultName: 'result',
        prefix: 'squares',
        first: 'start + lane',
        end: 'end',
        step: 'WG',
        term: (j) => `square(${loadF32(`piece${k}`, j, width)})`,
        width,
      })}
  return result;
}`);
      cases.push(`    case ${k}u: { partial = squares${k}(start, end, lid.x); }`);
    } else {
      functions.push(`fn scale${k}(start: u32, end: u32, lane: u32, factor: f32) {
  for (var j = start + lane; j < end; j += WG) {
    piece${k}[j] = ${storeAs(dtype, `${loadF32(`piece${k}`, 'j', width)} * factor`, width)};
  }
}`);
      cases.push(`    case ${k}u: { scale${k}(start, end, lid.x, factor); }`);
    }
  }
  const square =
    width === 4
      ? 'fn square(v: vec4<f32>) -> vec4<f32> { return v * v; }'
      : 'fn square(v: f32) -> f32 { return v * v; }';
  const locate = `
  let w = flat_workgroup(wid, nwg);
  if (w >= params.workgroups) { return; }
  var piece = 0u;
  for (var k = 1u; k < params.count; k++) {
    if (w >= params.pieces[k].x) { piece = k; }
  }
  let start = (w - params.pieces[piece].x) * (WG * ${UNITS_PER_INVOCATION}u);
  let end = min(start + WG * ${UNITS_PER_INVOCATION}u, params.pieces[piece].y);`;
  const body =
    mode === 'squares'
      ? `${locate}
  var partial = 0.0;
  switch piece {
${cases.join('\n')}
    default: {}
  }
  let total = workgroup_sum(partial, lid.x);
  if (lid.x == 0u) { partials[params.slot_offset + w] = total; }`
      : `${locate}
  let factor = min(1.0, params.max_norm / (norm[0] + 1e-6));
  switch piece {
${cases.join('\n')}
    default: {}
  }`;
  return kernelSource({
    storage,
    uniforms: PACK_FIELDS,
    workgroupSize: workgroup,
    helpers: `${rowHelpers(width)}\n${square}\n${functions.join('\n')}`,
    body,
  });
}
