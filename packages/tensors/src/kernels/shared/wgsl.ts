import { type UniformField, uniformStruct } from '../../device/uniforms.js';
import type { DType } from '../../tensor/dtype.js';

/** One storage binding of a kernel: `array<type>` read or written by the shader. */
export interface StorageBinding {
  name: string;
  /** Element type: a dtype or a WGSL vector such as vec4<f32>. */
  type: DType | `vec${2 | 4}<${'f32' | 'f16' | 'u32' | 'i32'}>` | 'atomic<u32>' | 'atomic<i32>';
  access: 'read' | 'read_write';
}

export interface KernelSourceSpec {
  storage: readonly StorageBinding[];
  uniforms?: readonly UniformField[];
  workgroupSize: number | readonly [number, number, number];
  /** The body of `main`. In scope: gid, lid, wid, nwg (vec3u builtins), `params`, and WG (u32). */
  body: string;
  /** Extra module-scope WGSL (helper functions, workgroup arrays, constants). */
  helpers?: string;
}

/**
 * Writes the shared prelude of a compute shader (enables, bindings, uniform struct, helpers) so a
 * kernel author writes only its body. Storage bindings take @binding(0..n-1) in order, the
 * uniform struct `params` takes @binding(n).
 */
export function kernelSource(spec: KernelSourceSpec): string {
  const usesF16 =
    spec.storage.some((s) => s.type.includes('f16')) || /\bf16\b/.test(spec.body + (spec.helpers ?? ''));
  const size = typeof spec.workgroupSize === 'number' ? [spec.workgroupSize, 1, 1] : spec.workgroupSize;
  const lines: string[] = [];
  if (usesF16) lines.push('enable f16;');
  spec.storage.forEach((s, i) => {
    lines.push(`@group(0) @binding(${i}) var<storage, ${s.access}> ${s.name}: array<${s.type}>;`);
  });
  if (spec.uniforms?.length) {
    lines.push(uniformStruct(spec.uniforms));
    lines.push(`@group(0) @binding(${spec.storage.length}) var<uniform> params: Params;`);
  }
  lines.push(`const WG: u32 = ${size[0] * size[1] * size[2]}u;`);
  lines.push(PRELUDE_HELPERS);
  if (spec.helpers) lines.push(spec.helpers);
  lines.push(
    `@compute @workgroup_size(${size.join(', ')})`,
    'fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_id) lid: vec3u,',
    '        @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {',
    spec.body,
    '}',
  );
  return lines.join('\n');
}

const PRELUDE_HELPERS = `
// Linear workgroup index of a dispatch spread over x and y by grid().
fn flat_workgroup(wid: vec3u, nwg: vec3u) -> u32 { return wid.y * nwg.x + wid.x; }`;

/** Number of workgroups to give every one of `items` work items one invocation. */
export function workgroupsFor(items: number, perWorkgroup: number): number {
  return Math.ceil(items / perWorkgroup);
}
