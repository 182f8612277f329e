import type { UniformField } from '../../device/uniforms.js';

/** At most this many dimensions after collapsing contiguous runs (collapseDims). */
export const MAX_RANK = 8;

/** Uniform fields for an output shape and the strides of `operands` inputs. */
export function stridedFields(operands: readonly string[]): UniformField[] {
  return [
    { name: 'shape', type: 'array<vec4u,2>' },
    ...operands.map((name) => ({ name: `stride_${name}`, type: 'array<vec4u,2>' as const })),
  ];
}

/** Pads a dims array to MAX_RANK entries for the uniform. */
export function padDims(values: readonly number[], fill = 0): number[] {
  const out = [...values];
  while (out.length < MAX_RANK) out.push(fill);
  return out;
}

/**
 * WGSL that turns the flat output index `index` into the input offsets `offset_<name>`,
 * unrolled for a fixed rank (part of the pipeline key).
 */
export function stridedOffsets(rank: number, operands: readonly string[]): string {
  const lines = operands.map((name) => `  var offset_${name} = 0u;`);
  lines.push('  var rest = index;');
  for (let d = rank - 1; d >= 0; d--) {
    const at = `[${d >> 2}][${d & 3}]`;
    lines.push(`  { let extent = params.shape${at}; let coordinate = rest % extent; rest = rest / extent;`);
    for (const name of operands) lines.push(`    offset_${name} += coordinate * params.stride_${name}${at};`);
    lines.push('  }');
  }
  return lines.join('\n');
}
