// Matmul kernel variants for lavapipe, each a function of its parameters returning
// { key, source, workgroups(M, N), layout }. Layout 'nn': a [M, K], b [K, N]; 'nt': b is [N, K].
import { kernelSource } from '@webtune/tensors';

const FIELDS = [
  { name: 'M', type: 'u32' },
  { name: 'N', type: 'u32' },
  { name: 'K', type: 'u32' },
];

export { FIELDS };

/** One invocation per output, no blocking. */
export function naive() {
  return {
    key: 'lab-naive',
    layout: 'nn',
    workgroups: (M, N) => [Math.ceil(N / 8), Math.ceil(M / 8)],
    source: () =>
      kernelSource({
        storage: [
          { name: 'a', type: 'f32', access: 'read' },
          { name: 'b', type: 'f32', access: 'read' },
          { name: 'c', type: 'f32', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: [8, 8, 1],
        body: `
  let row = gid.y; let col = gid.x;
  if (row >= params.M || col >= params.N) { return; }
  var sum = 0.0;
  for (var k = 0u; k < params.K; k++) { sum = fma(a[row * params.K + k], b[k * params.N + col], sum); }
  c[row * params.N + col] = sum;`,
      }),
  };
}

/**
 * Register tile of R rows x C columns per invocation, 8 invocations per workgroup along N, the
 * row block from workgroup_id (uniform A). NN layout: B read as vec4 along N.
 * unroll 4: A read as vec4 along K (K % 4 == 0), four k per iteration.
 */
export function blockedNN({ R, C, unroll = 1, lanes = 8, scalarA = false }) {
  const C4 = C / 4;
  const lines = [];
  lines.push('  let col4 = (wid.x * WG + lid.x) * ' + C4 + 'u;');
  lines.push(`  let row0 = wid.y * ${R}u;`);
  lines.push('  let N4 = params.N / 4u; let K4 = params.K / 4u;');
  for (let r = 0; r < R; r++) for (let c = 0; c < C4; c++) lines.push(`  var acc_${r}_${c} = vec4f(0.0);`);
  for (let r = 0; r < R; r++) lines.push(`  let arow_${r} = min(row0 + ${r}u, params.M - 1u);`);
  if (unroll === 1) {
    lines.push('  for (var k = 0u; k < params.K; k++) {');
    for (let c = 0; c < C4; c++) lines.push(`    let b_${c} = b[k * N4 + col4 + ${c}u];`);
    for (let r = 0; r < R; r++) {
      lines.push(`    let a_${r} = a[arow_${r} * params.K + k];`);
      for (let c = 0; c < C4; c++)
        lines.push(`    acc_${r}_${c} = fma(vec4f(a_${r}), b_${c}, acc_${r}_${c});`);
    }
    lines.push('  }');
  } else {
    lines.push('  for (var k4 = 0u; k4 < K4; k4++) {');
    lines.push('    let k = k4 * 4u;');
    for (let kk = 0; kk < 4; kk++)
      for (let c = 0; c < C4; c++) lines.push(`    let b_${kk}_${c} = b[(k + ${kk}u) * N4 + col4 + ${c}u];`);
    for (let r = 0; r < R; r++) {
      if (scalarA) {
        for (let kk = 0; kk < 4; kk++)
          lines.push(`    let a_${r}_${kk} = a1[arow_${r} * params.K + k + ${kk}u];`);
      } else {
        lines.push(`    let a_${r} = a[arow_${r} * K4 + k4];`);
      }
      for (let kk = 0; kk < 4; kk++) {
        const av = scalarA ? `a_${r}_${kk}` : `a_${r}[${kk}]`;
        for (let c = 0; c < C4; c++)
          lines.push(`    acc_${r}_${c} = fma(vec4f(${av}), b_${kk}_${c}, acc_${r}_${c});`);
      }
    }
    lines.push('  }');
  }
  for (let r = 0; r < R; r++) {
    lines.push(`  if (row0 + ${r}u < params.M) {`);
    for (let c = 0; c < C4; c++)
      lines.push(`    if (col4 + ${c}u < N4) { c[(row0 + ${r}u) * N4 + col4 + ${c}u] = acc_${r}_${c}; }`);
    lines.push('  }');
  }
  const aType = unroll === 4 && !scalarA ? 'vec4<f32>' : 'f32';
  return {
    key: `lab-nn-${R}x${C}-u${unroll}-l${lanes}${scalarA ? '-sa' : ''}`,
    layout: 'nn',
    workgroups: (M, N) => [Math.ceil(N / (C * lanes)), Math.ceil(M / R)],
    source: () =>
      kernelSource({
        storage: [
          { name: scalarA ? 'a1' : 'a', type: aType, access: 'read' },
          { name: 'b', type: 'vec4<f32>', access: 'read' },
          { name: 'c', type: 'vec4<f32>', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: lanes,
        body: lines.join('\n'),
      }),
  };
}

/**
 * NT layout (b is [N, K]): both operands read as vec4 along K. R rows x C columns per invocation,
 * lanes along N, scalar accumulators, dot products of vec4s.
 */
export function blockedNT({ R, C, lanes = 8, useDot = false }) {
  const lines = [];
  lines.push(`  let col0 = (wid.x * WG + lid.x) * ${C}u;`);
  lines.push(`  let row0 = wid.y * ${R}u;`);
  lines.push('  let K4 = params.K / 4u;');
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) lines.push(`  var acc_${r}_${c} = 0.0;`);
  for (let r = 0; r < R; r++) lines.push(`  let arow_${r} = min(row0 + ${r}u, params.M - 1u) * K4;`);
  for (let c = 0; c < C; c++) lines.push(`  let brow_${c} = min(col0 + ${c}u, params.N - 1u) * K4;`);
  lines.push('  for (var k4 = 0u; k4 < K4; k4++) {');
  for (let c = 0; c < C; c++) lines.push(`    let b_${c} = b[brow_${c} + k4];`);
  for (let r = 0; r < R; r++) {
    lines.push(`    let a_${r} = a[arow_${r} + k4];`);
    for (let c = 0; c < C; c++) {
      if (useDot) lines.push(`    acc_${r}_${c} += dot(a_${r}, b_${c});`);
      else
        lines.push(
          `    acc_${r}_${c} = fma(a_${r}.w, b_${c}.w, fma(a_${r}.z, b_${c}.z, fma(a_${r}.y, b_${c}.y, fma(a_${r}.x, b_${c}.x, acc_${r}_${c}))));`,
        );
    }
  }
  lines.push('  }');
  for (let r = 0; r < R; r++) {
    lines.push(`  if (row0 + ${r}u < params.M) {`);
    for (let c = 0; c < C; c++)
      lines.push(
        `    if (col0 + ${c}u < params.N) { c[(row0 + ${r}u) * params.N + col0 + ${c}u] = acc_${r}_${c}; }`,
      );
    lines.push('  }');
  }
  return {
    key: `lab-nt-${R}x${C}-l${lanes}${useDot ? '-dot' : ''}`,
    layout: 'nt',
    workgroups: (M, N) => [Math.ceil(N / (C * lanes)), Math.ceil(M / R)],
    source: () =>
      kernelSource({
        storage: [
          { name: 'a', type: 'vec4<f32>', access: 'read' },
          { name: 'b', type: 'vec4<f32>', access: 'read' },
          { name: 'c', type: 'f32', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: lanes,
        body: lines.join('\n'),
      }),
  };
}

/**
 * Subgroup variant: every lane loads distinct data. A: lane l loads rows row0 + 8g + l as vec4
 * along K; each row's values reach all lanes through subgroupBroadcast with a constant lane.
 * B: lane l owns C columns (vec4 along N). R rows (multiple of 8) x C columns per lane.
 * Needs subgroup size 8 == workgroup size and K % 4 == 0.
 */
export function subgroupNN({ R, C, kOuter = true }) {
  const C4 = C / 4;
  const G = R / 8;
  const lines = [];
  lines.push(`  let col4 = (wid.x * 8u + lid.x) * ${C4}u;`);
  lines.push(`  let row0 = wid.y * ${R}u;`);
  lines.push('  let N4 = params.N / 4u; let K4 = params.K / 4u;');
  for (let r = 0; r < R; r++) for (let c = 0; c < C4; c++) lines.push(`  var acc_${r}_${c} = vec4f(0.0);`);
  for (let g = 0; g < G; g++)
    lines.push(`  let arow_${g} = min(row0 + ${g * 8}u + lid.x, params.M - 1u) * K4;`);
  for (let c = 0; c < C4; c++) lines.push(`  let bcol_${c} = min(col4 + ${c}u, N4 - 1u);`);
  lines.push('  for (var k4 = 0u; k4 < K4; k4++) {');
  for (let g = 0; g < G; g++) lines.push(`    let av_${g} = a[arow_${g} + k4];`);
  const comps = ['x', 'y', 'z', 'w'];
  if (!kOuter) {
    for (let kk = 0; kk < 4; kk++) {
      lines.push(`    let brow_${kk} = (k4 * 4u + ${kk}u) * N4;`);
      for (let c = 0; c < C4; c++) lines.push(`    let b_${kk}_${c} = b[brow_${kk} + bcol_${c}];`);
    }
    for (let r = 0; r < R; r++) {
      lines.push(`    let a_${r} = subgroupBroadcast(av_${r >> 3}, ${r & 7}u);`);
      for (let c = 0; c < C4; c++) {
        let expr = `acc_${r}_${c}`;
        for (let kk = 0; kk < 4; kk++) expr = `fma(vec4f(a_${r}.${comps[kk]}), b_${kk}_${c}, ${expr})`;
        lines.push(`    acc_${r}_${c} = ${expr};`);
      }
    }
  }
  for (let kk = 0; kk < (kOuter ? 4 : 0); kk++) {
    lines.push(`    let brow_${kk} = (k4 * 4u + ${kk}u) * N4;`);
    for (let c = 0; c < C4; c++) lines.push(`    let b_${kk}_${c} = b[brow_${kk} + bcol_${c}];`);
    for (let r = 0; r < R; r++) {
      lines.push(`    let a_${kk}_${r} = subgroupBroadcast(av_${r >> 3}.${comps[kk]}, ${r & 7}u);`);
      for (let c = 0; c < C4; c++)
        lines.push(`    acc_${r}_${c} = fma(vec4f(a_${kk}_${r}), b_${kk}_${c}, acc_${r}_${c});`);
    }
  }
  lines.push('  }');
  for (let r = 0; r < R; r++) {
    lines.push(`  if (row0 + ${r}u < params.M) {`);
    for (let c = 0; c < C4; c++)
      lines.push(`    if (col4 + ${c}u < N4) { c[(row0 + ${r}u) * N4 + col4 + ${c}u] = acc_${r}_${c}; }`);
    lines.push('  }');
  }
  return {
    key: `lab-sg-nn-${R}x${C}${kOuter ? '' : '-rowmajor'}`,
    layout: 'nn',
    workgroups: (M, N) => [Math.ceil(N / (C * 8)), Math.ceil(M / R)],
    source: () =>
      'enable subgroups;\n' +
      kernelSource({
        storage: [
          { name: 'a', type: 'vec4<f32>', access: 'read' },
          { name: 'b', type: 'vec4<f32>', access: 'read' },
          { name: 'c', type: 'vec4<f32>', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: 8,
        body: lines.join('\n'),
      }),
  };
}

/** Subgroup variant for b as [N, K]: vec4 loads along K for both operands, scalar accumulators. */
export function subgroupNT({ R, C }) {
  const G = R / 8;
  const lines = [];
  lines.push(`  let col0 = (wid.x * 8u + lid.x) * ${C}u;`);
  lines.push(`  let row0 = wid.y * ${R}u;`);
  lines.push('  let K4 = params.K / 4u;');
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) lines.push(`  var acc_${r}_${c} = 0.0;`);
  for (let g = 0; g < G; g++)
    lines.push(`  let arow_${g} = min(row0 + ${g * 8}u + lid.x, params.M - 1u) * K4;`);
  for (let c = 0; c < C; c++) lines.push(`  let brow_${c} = min(col0 + ${c}u, params.N - 1u) * K4;`);
  lines.push('  for (var k4 = 0u; k4 < K4; k4++) {');
  for (let g = 0; g < G; g++) lines.push(`    let av_${g} = a[arow_${g} + k4];`);
  for (let c = 0; c < C; c++) lines.push(`    let b_${c} = b[brow_${c} + k4];`);
  for (let r = 0; r < R; r++) {
    lines.push(`    let a_${r} = subgroupBroadcast(av_${r >> 3}, ${r & 7}u);`);
    for (let c = 0; c < C; c++)
      lines.push(
        `    acc_${r}_${c} = fma(a_${r}.w, b_${c}.w, fma(a_${r}.z, b_${c}.z, fma(a_${r}.y, b_${c}.y, fma(a_${r}.x, b_${c}.x, acc_${r}_${c}))));`,
      );
  }
  lines.push('  }');
  for (let r = 0; r < R; r++) {
    lines.push(`  if (row0 + ${r}u < params.M) {`);
    for (let c = 0; c < C; c++)
      lines.push(
        `    if (col0 + ${c}u < params.N) { c[(row0 + ${r}u) * params.N + col0 + ${c}u] = acc_${r}_${c}; }`,
      );
    lines.push('  }');
  }
  return {
    key: `lab-sg-nt-${R}x${C}`,
    layout: 'nt',
    workgroups: (M, N) => [Math.ceil(N / (C * 8)), Math.ceil(M / R)],
    source: () =>
      'enable subgroups;\n' +
      kernelSource({
        storage: [
          { name: 'a', type: 'vec4<f32>', access: 'read' },
          { name: 'b', type: 'vec4<f32>', access: 'read' },
          { name: 'c', type: 'f32', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: 8,
        body: lines.join('\n'),
      }),
  };
}

/**
 * Packed operands: a as [M/R][K/4][R] vec4 (each vec4 four consecutive k of one row), b as
 * [N/(8C)][K/4][C][8] vec4, so one workgroup walks two contiguous streams. R x C per lane.
 */
export function subgroupPacked({ R, C, unrollK = 1, aDirect = false }) {
  const G = R / 8;
  const lines = [];
  lines.push(`  let col0 = (wid.x * 8u + lid.x) * ${C}u;`);
  lines.push(`  let row0 = wid.y * ${R}u;`);
  lines.push('  let K4 = params.K / 4u;');
  // Direct A: row-major [M, K] read as vec4 along K, rows clamped.
  lines.push(
    aDirect
      ? `  let abase = min(row0 + lid.x, params.M - 1u) * K4;`
      : `  let abase = wid.y * K4 * ${R}u + lid.x;`,
  );
  lines.push(`  let bbase = wid.x * K4 * ${8 * C}u + lid.x;`);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) lines.push(`  var acc_${r}_${c} = 0.0;`);
  lines.push(`  for (var k4 = 0u; k4 < K4; k4 += ${unrollK}u) {`);
  for (let u = 0; u < unrollK; u++) {
    for (let g = 0; g < G; g++)
      lines.push(
        aDirect
          ? `    let av_${u}_${g} = a[min(abase + ${g * 8}u * K4, (params.M - 1u) * K4) + k4 + ${u}u];`
          : `    let av_${u}_${g} = a[abase + (k4 + ${u}u) * ${R}u + ${g * 8}u];`,
      );
    for (let c = 0; c < C; c++)
      lines.push(`    let b_${u}_${c} = b[bbase + (k4 + ${u}u) * ${8 * C}u + ${c * 8}u];`);
  }
  for (let r = 0; r < R; r++) {
    for (let u = 0; u < unrollK; u++)
      lines.push(`    let a_${u}_${r} = subgroupBroadcast(av_${u}_${r >> 3}, ${r & 7}u);`);
    for (let c = 0; c < C; c++) {
      let expr = `acc_${r}_${c}`;
      for (let u = 0; u < unrollK; u++)
        for (const q of ['x', 'y', 'z', 'w']) expr = `fma(a_${u}_${r}.${q}, b_${u}_${c}.${q}, ${expr})`;
      lines.push(`    acc_${r}_${c} = ${expr};`);
    }
  }
  lines.push('  }');
  for (let r = 0; r < R; r++) {
    lines.push(`  if (row0 + ${r}u < params.M) {`);
    for (let c = 0; c < C; c++)
      lines.push(
        `    if (col0 + ${c}u < params.N) { c[(row0 + ${r}u) * params.N + col0 + ${c}u] = acc_${r}_${c}; }`,
      );
    lines.push('  }');
  }
  return {
    key: `lab-sg-packed-${R}x${C}-u${unrollK}${aDirect ? '-adirect' : ''}`,
    layout: aDirect ? 'packed-b' : 'packed',
    R,
    C,
    workgroups: (M, N) => [Math.ceil(N / (C * 8)), Math.ceil(M / R)],
    source: () =>
      'enable subgroups;\n' +
      kernelSource({
        storage: [
          { name: 'a', type: 'vec4<f32>', access: 'read' },
          { name: 'b', type: 'vec4<f32>', access: 'read' },
          { name: 'c', type: 'f32', access: 'read_write' },
        ],
        uniforms: FIELDS,
        workgroupSize: 8,
        body: lines.join('\n'),
      }),
  };
}

/** Host packing for the lab (the package packs on the GPU). */
export function packA(data, M, K, R) {
  const panels = Math.ceil(M / R);
  const K4 = Math.ceil(K / 4);
  const out = new Float32Array(panels * K4 * R * 4);
  for (let p = 0; p < panels; p++)
    for (let k4 = 0; k4 < K4; k4++)
      for (let r = 0; r < R; r++)
        for (let q = 0; q < 4; q++) {
          const row = p * R + r;
          const k = k4 * 4 + q;
          out[((p * K4 + k4) * R + r) * 4 + q] = row < M && k < K ? data[row * K + k] : 0;
        }
  return out;
}

export function packB(data, K, N, C) {
  const width = 8 * C;
  const panels = Math.ceil(N / width);
  const K4 = Math.ceil(K / 4);
  const out = new Float32Array(panels * K4 * width * 4);
  for (let p = 0; p < panels; p++)
    for (let k4 = 0; k4 < K4; k4++)
      for (let c = 0; c < C; c++)
        for (let l = 0; l < 8; l++)
          for (let q = 0; q < 4; q++) {
            const col = p * width + l * C + c;
            const k = k4 * 4 + q;
            out[((p * K4 + k4) * width + c * 8 + l) * 4 + q] = col < N && k < K ? data[k * N + col] : 0;
          }
  return out;
}

/**
 * B panel in uniform buffers: lavapipe gathers uniform-buffer loads without per-lane branches.
 * One dispatch per column panel; the panel ([K/4][C][8] vec4) is split over `chunks` uniform
 * bindings of 4096 vec4 each. a is packed as in subgroupPacked.
 */
export function subgroupUbo({ R, C, chunks }) {
  const G = R / 8;
  const perChunk = 4096 / (8 * C); // k4 steps per uniform binding
  const lines = [];
  lines.push(`  let col0 = (params.panel * 8u + lid.x) * ${C}u;`);
  lines.push(`  let row0 = wid.x * ${R}u;`);
  lines.push('  let K4 = params.K / 4u;');
  lines.push(`  let abase = wid.x * K4 * ${R}u + lid.x;`);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) lines.push(`  var acc_${r}_${c} = 0.0;`);
  for (let u = 0; u < chunks; u++) {
    lines.push(`  for (var k4 = ${u * perChunk}u; k4 < min(K4, ${(u + 1) * perChunk}u); k4++) {`);
    lines.push(`    let local = (k4 - ${u * perChunk}u) * ${8 * C}u + lid.x;`);
    for (let g = 0; g < G; g++) lines.push(`    let av_${g} = a[abase + k4 * ${R}u + ${g * 8}u];`);
    for (let c = 0; c < C; c++) lines.push(`    let b_${c} = u${u}[local + ${c * 8}u];`);
    for (let r = 0; r < R; r++) {
      lines.push(`    let a_${r} = subgroupBroadcast(av_${r >> 3}, ${r & 7}u);`);
      for (let c = 0; c < C; c++) {
        let expr = `acc_${r}_${c}`;
        for (const q of ['x', 'y', 'z', 'w']) expr = `fma(a_${r}.${q}, b_${c}.${q}, ${expr})`;
        lines.push(`    acc_${r}_${c} = ${expr};`);
      }
    }
    lines.push('  }');
  }
  for (let r = 0; r < R; r++) {
    lines.push(`  if (row0 + ${r}u < params.M) {`);
    for (let c = 0; c < C; c++)
      lines.push(
        `    if (col0 + ${c}u < params.N) { c[(row0 + ${r}u) * params.N + col0 + ${c}u] = acc_${r}_${c}; }`,
      );
    lines.push('  }');
  }
  const fields = [...FIELDS, { name: 'panel', type: 'u32' }];
  const decls = [];
  for (let u = 0; u < chunks; u++)
    decls.push(`@group(0) @binding(${2 + u}) var<uniform> u${u}: array<vec4f, 4096>;`);
  return {
    key: `lab-sg-ubo-${R}x${C}`,
    layout: 'ubo',
    R,
    C,
    chunks,
    fields,
    source: () =>
      [
        'enable subgroups;',
        '@group(0) @binding(0) var<storage, read> a: array<vec4f>;',
        '@group(0) @binding(1) var<storage, read_write> c: array<f32>;',
        `struct Params { ${fields.map((f) => `${f.name}: ${f.type},`).join(' ')} }`,
        `@group(0) @binding(${2 + chunks}) var<uniform> params: Params;`,
        ...decls,
        '@compute @workgroup_size(8)',
        'fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {',
        ...lines,
        '}',
      ].join('\n'),
  };
}
