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
  /** Per field: 0 u32 lanes, 1 i32, 2 f32. */
  kinds: number[];
  /** Per field: how many 4-byte lanes it holds. */
  lanes: number[];
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
    const kinds: number[] = [];
    const lanes: number[] = [];
    let offset = 0;
    for (const f of fields) {
      const { size, align } = fieldSize(f.type);
      offset = Math.ceil(offset / align) * align;
      offsets.push(offset);
      kinds.push(f.type === 'f32' || f.type === 'vec4f' ? 2 : f.type === 'i32' || f.type === 'vec4i' ? 1 : 0);
      lanes.push(size / 4);
      offset += size;
    }
    layout = { offsets, size: Math.max(16, Math.ceil(offset / 16) * 16), kinds, lanes };
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
  // Runs at every dispatch: a plain loop over the cached layout, no closure or array per field.
  const { offsets, kinds, lanes } = uniformLayout(fields);
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i].name;
    const v = values[name];
    if (v === undefined) throw new Error(`uniform ${name} has no value`);
    const at = base + offsets[i];
    const kind = kinds[i];
    if (typeof v === 'number') {
      writeLane(view, at, kind, v);
      continue;
    }
    // Vectors and arrays: the given values, zeros past their end.
    const count = lanes[i];
    for (let k = 0; k < count; k++) writeLane(view, at + 4 * k, kind, v[k] ?? 0);
  }
}

function writeLane(view: DataView, at: number, kind: number, x: number): void {
  if (kind === 2) view.setFloat32(at, x, true);
  else if (kind === 1) view.setInt32(at, x, true);
  else view.setUint32(at, x >>> 0, true);
}
