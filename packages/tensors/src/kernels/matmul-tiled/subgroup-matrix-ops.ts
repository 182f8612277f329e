import type { SubgroupMatrixConfig } from './subgroup-matrix-config.js';

/**
 * The subgroup-matrix operations the kernel uses, as WGSL text. `builtinOps` are the proposal's
 * builtins (what runs on an adapter with the feature). `emulatedOps` are plain-WGSL stand-ins
 * written from the proposal's definitions of those builtins (each invocation holds the whole
 * matrix; loads, stores and multiply-accumulate follow the stated offset, stride and majorness
 * rules), so the kernel's staging, offsets, strides and edges can run on an adapter without the
 * feature (lavapipe) and be compared with float64. They say nothing about a driver's own
 * implementation, which only the device's self-check (subgroup-matrix-check.ts) tests.
 */
export interface MatrixOps {
  /** Enable directives (first in the module). */
  enables: string[];
  /** Helper functions (after the workgroup arrays they read). */
  functions: string[];
  left: string;
  right: string;
  result: string;
  /** A zero result matrix. */
  zero: string;
  /** An expression loading a left (panel_a) or right (panel_b) matrix. */
  load(which: 'left' | 'right', offset: number, colMajor: boolean, stride: number): string;
  /** An expression: left x right + acc. */
  multiplyAccumulate(left: string, right: string, acc: string): string;
  /** A statement storing a result matrix into result_tile. */
  store(offset: number, value: string, colMajor: boolean, stride: number): string;
}

const PANELS = { left: 'panel_a', right: 'panel_b' } as const;

export function builtinOps(config: SubgroupMatrixConfig): MatrixOps {
  const { M, N, K, componentType: T, resultComponentType: R } = config;
  const types = {
    left: `subgroup_matrix_left<${T}, ${K}, ${M}>`,
    right: `subgroup_matrix_right<${T}, ${N}, ${K}>`,
  };
  const result = `subgroup_matrix_result<${R}, ${N}, ${M}>`;
  return {
    enables: [
      ...(T === 'f16' ? ['enable f16;'] : []),
      'enable subgroups;',
      'enable chromium_experimental_subgroup_matrix;',
    ],
    functions: [],
    ...types,
    result,
    zero: `${result}(0.0)`,
    load: (which, offset, colMajor, stride) =>
      `subgroupMatrixLoad<${types[which]}>(&${PANELS[which]}, ${offset}u, ${colMajor}, ${stride}u)`,
    multiplyAccumulate: (left, right, acc) => `subgroupMatrixMultiplyAccumulate(${left}, ${right}, ${acc})`,
    store: (offset, value, colMajor, stride) =>
      `subgroupMatrixStore(&result_tile, ${offset}u, ${value}, ${colMajor}, ${stride}u);`,
  };
}

export function emulatedOps(config: SubgroupMatrixConfig): MatrixOps {
  const { M, N, K, componentType: T } = config;
  const left = `array<${T}, ${M * K}>`;
  const right = `array<${T}, ${K * N}>`;
  const result = `array<f32, ${M * N}>`;
  // Element [r, c] of a rows x cols matrix: offset + r * stride + c (row major) or
  // offset + c * stride + r (column major); held row major in the value.
  const loader = (name: string, type: string, panel: string, rows: number, cols: number) => `fn ${name}(offset: u32, col_major: bool, stride: u32) -> ${type} {
  var m: ${type};
  for (var r = 0u; r < ${rows}u; r++) {
    for (var c = 0u; c < ${cols}u; c++) {
      m[r * ${cols}u + c] = ${panel}[select(offset + r * stride + c, offset + c * stride + r, col_major)];
    }
  }
  return m;
}`;
  const functions = [
    loader('emulated_load_left', left, 'panel_a', M, K),
    loader('emulated_load_right', right, 'panel_b', K, N),
    `fn emulated_multiply_accumulate(l: ${left}, r: ${right}, acc: ${result}) -> ${result} {
  var out = acc;
  for (var i = 0u; i < ${M}u; i++) {
    for (var j = 0u; j < ${N}u; j++) {
      var sum = out[i * ${N}u + j];
      for (var k = 0u; k < ${K}u; k++) { sum += f32(l[i * ${K}u + k]) * f32(r[k * ${N}u + j]); }
      out[i * ${N}u + j] = sum;
    }
  }
  return out;
}`,
    `fn emulated_store(offset: u32, value: ${result}, col_major: bool, stride: u32) {
  for (var r = 0u; r < ${M}u; r++) {
    for (var c = 0u; c < ${N}u; c++) {
      result_tile[select(offset + r * stride + c, offset + c * stride + r, col_major)] = value[r * ${N}u + c];
    }
  }
}`,
  ];
  return {
    enables: T === 'f16' ? ['enable f16;'] : [],
    functions,
    left,
    right,
    result,
    zero: `${result}()`,
    load: (which, offset, colMajor, stride) => `emulated_load_${which}(${offset}u, ${colMajor}, ${stride}u)`,
    multiplyAccumulate: (l, r, acc) => `emulated_multiply_accumulate(${l}, ${r}, ${acc})`,
    store: (offset, value, colMajor, stride) => `emulated_store(${offset}u, ${value}, ${colMajor}, ${stride}u);`,
  };
}
