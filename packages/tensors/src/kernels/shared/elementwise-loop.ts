import { type Device, grid } from '../../device/device.js';

/**
 * The loop shared by the flat (contiguous, same-shape) elementwise kernels: unary, binary, fill,
 * where, cast, random. Each invocation handles `perInvocation` consecutive items (vec4s where the
 * kernel vectorises); the common case runs without per-item bounds checks, only the last
 * invocation checks each item against `params.n`.
 *
 * Measured on lavapipe (add of two 16M f32 tensors, one process, back to back): one vec4 per
 * invocation ~7.5 GB/s, four consecutive vec4s per invocation ~11-12 GB/s, eight ~8 GB/s,
 * four interleaved by the workgroup size ~6-10 GB/s; workgroup size 64 vs 256 within noise.
 * `device.tuning.elementwisePerInvocation` picks the count per adapter class.
 */
export function elementwiseLoop(perInvocation: number, statement: (index: string) => string): string {
  if (perInvocation === 1) {
    return `
  let index = flat_workgroup(wid, nwg) * WG + lid.x;
  if (index >= params.n) { return; }
  ${statement('index')}`;
  }
  const unchecked: string[] = [];
  const checked: string[] = [];
  for (let j = 0; j < perInvocation; j++) {
    unchecked.push(`    { let index = first + ${j}u; ${statement('index')} }`);
    checked.push(`    { let index = first + ${j}u; if (index < params.n) { ${statement('index')} } }`);
  }
  return `
  let first = (flat_workgroup(wid, nwg) * WG + lid.x) * ${perInvocation}u;
  if (first >= params.n) { return; }
  if (first + ${perInvocation - 1}u < params.n) {
${unchecked.join('\n')}
  } else {
${checked.join('\n')}
  }`;
}

/** Workgroup counts (spread over x and y) for `items` items with elementwiseLoop. */
export function elementwiseGrid(device: Device, items: number, perInvocation: number): [number, number] {
  const perWorkgroup = device.tuning.elementwiseWorkgroup * perInvocation;
  return grid(Math.ceil(items / perWorkgroup), device.maxWorkgroupsPerDimension);
}
