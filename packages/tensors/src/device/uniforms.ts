/**
 * Kernel parameters travel in one uniform buffer per submit: each dispatch takes a slot, the
 * slots are written with a single queue.writeBuffer right before the submit. A dispatch's slot
 * is bound with a dynamic-free offset, so recording a dispatch allocates nothing on the GPU.
 */
export type UniformType = 'u32' | 'i32' | 'f32' | 'vec4u' | 'vec4i' | 'vec4f' | `array<vec4u,${number}>`;

export type UniformValue = number | ArrayLike<number>;

export interface UniformField {
  name: string;
  type: UniformType;
}

interface Layout {
  offsets: number[];
  size: number;
}

function fieldSize(type: UniformType): { size: number; align: number } {
  if (type === 'u32' || type === 'i32' || type === 'f32') return { size: 4, align: 4 };
  if (type.startsWith('vec4')) return { size: 16, align: 16 };
  const count = Number(type.slice(type.indexOf(',') + 1, -1));
  return { size: 16 * count, align: 16 };
}

const layoutCache = new Map<string, Layout>();
/**
 * Layouts by the fields array itself: kernels pass the same constant array at every dispatch, so
 * the lookup (twice per dispatch) costs no string building. Arrays are never mutated after use.
 */
const layoutByFields = new WeakMap<readonly UniformField[], Layout>();

export function uniformLayout(fields: readonly UniformField[]): Layout {
  const known = layoutByFields.get(fields);
  if (known) return known;
  const key = fields.map((f) => `${f.name}:${f.type}`).join(';');
  let layout = layoutCache.get(key);
  if (!layout) {
    const offsets: number[] = [];
    let offset = 0;
    for (const f of fields) {
      const { size, align } = fieldSize(f.type);
      offset = Math.ceil(offset / align) * align;
      offsets.push(offset);
      offset += size;
    }
    layout = { offsets, size: Math.max(16, Math.ceil(offset / 16) * 16) };
    layoutCache.set(key, layout);
  }
  layoutByFields.set(fields, layout);
  return layout;
}

export function uniformStruct(fields: readonly UniformField[]): string {
  return `struct Params {\n${fields.map((f) => `  ${f.name}: ${f.type},`).join('\n')}\n}`;
}

export function writeUniforms(
  view: DataView,
  base: number,
  fields: readonly UniformField[],
  values: Record<string, UniformValue>,
): void {
  const { offsets } = uniformLayout(fields);
  fields.forEach((f, i) => {
    const v = values[f.name];
    if (v === undefined) throw new Error(`uniform ${f.name} has no value`);
    const at = base + offsets[i];
    const scalarKind =
      f.type === 'f32' || f.type === 'vec4f' ? 'f' : f.type === 'i32' || f.type === 'vec4i' ? 'i' : 'u';
    const list = typeof v === 'number' ? [v] : Array.from(v);
    const count = typeof v === 'number' ? 1 : fieldSize(f.type).size / 4;
    for (let k = 0; k < count; k++) {
      const x = list[k] ?? 0;
      if (scalarKind === 'f') view.setFloat32(at + 4 * k, x, true);
      else if (scalarKind === 'i') view.setInt32(at + 4 * k, x, true);
      else view.setUint32(at + 4 * k, x >>> 0, true);
    }
  });
}
