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
      for (let c = 0; c < C4; c++) lines.push(`    acc_${r}_${c} = fma(vec4f(a_${r}), b_${c}, acc_${r}_${c});`);
    }
    lines.push('  }');
  } else {
    lines.push('  for (var k4 = 0u; k4 < K4; k4++) {');
    lines.push('    let k = k4 * 4u;');
    for (let kk = 0; kk < 4; kk++)
      for (let c = 0; c < C4; c++) lines.push(`    let b_${kk}_${c} = b[(k + ${kk}u) * N4 + col4 + ${c}u];`);
    for (let r = 0; r < R; r++) {
      if (scalarA) {
        for (let kk = 0; kk < 4; kk++) lines.push(`    let a_${r}_${kk} = a1[arow_${r} * params.K + k + ${kk}u];`);
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
      lines.push(`    if (col0 + ${c}u < params.N) { c[(row0 + ${r}u) * params.N + col0 + ${c}u] = acc_${r}_${c}; }`);
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
