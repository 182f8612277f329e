import type { SubgroupMatrixConfig } from './subgroup-matrix-config.js';

/**
 * The subgroup-matrix operations the kernel uses, as WGSL text. `builtinOps` are the proposal's
 * builtins (what runs on an adapter with the feature). `emulatedOps` are plain-WGSL stand-ins
 * written from the proposal's definitions of those builtins (each invocation computes whole
 * matrices; loads, stores and multiply-accumulate follow the stated offset, stride and majorness
 * rules), so the kernel's staging, offsets, strides and edges can run on an adapter without the
 * feature (lavapipe) and be compared with float64. They say nothing about a driver's own
 * implementation, which only the device's self-check (subgroup-matrix-check.ts) tests.
 */
export interface MatrixOps {
  /** Enable directives (first in the module). */
  enables: string[];
  /** Helper functions (after the workgroup arrays they read). */
  functions: string[];
  /** Statements at the start of main (after the tile is decoded). */
  prologue: string[];
  left: string;
  right: string;
  result: string;
  /** A zero result matrix (`slot`: which of the kernel's accumulators it is). */
  zero(slot: number): string;
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
    prologue: [],
    ...types,
    result,
    zero: () => `${result}(0.0)`,
    load: (which, offset, colMajor, stride) =>
      `subgroupMatrixLoad<${types[which]}>(&${PANELS[which]}, ${offset}u, ${colMajor}, ${stride}u)`,
    multiplyAccumulate: (left, right, acc) => `subgroupMatrixMultiplyAccumulate(${left}, ${right}, ${acc})`,
    store: (offset, value, colMajor, stride) =>
      `subgroupMatrixStore(&result_tile, ${offset}u, ${value}, ${colMajor}, ${stride}u);`,
  };
}

export function emulatedOps(config: SubgroupMatrixConfig, accumulators: number): MatrixOps {
  const { M, N, K } = config;
  // A loaded matrix is a view of its panel (offset, majorness, stride): the panels do not change
  // between a step's loads and its products (the barriers see to it), so reading through the view
  // at multiply time is the load. A result matrix is the index of an M x N slot of a workgroup
  // array that lane 0 alone computes (a private array indexed at run time compiles to branch
  // ladders on lavapipe); the kernel's barriers order lane 0's stores before the others' reads.
  // Element [r, c] of a view is at offset + r * stride + c (row major) or offset + c * stride + r.
  const view = (panel: string, name: string) => `fn ${name}(v: EmulatedView, r: u32, c: u32) -> f32 {
  let at = select(v.offset + r * v.stride + c, v.offset + c * v.stride + r, v.col_major);
  return f32(${panel}[at]);
}`;
  const functions = [
    'struct EmulatedView { offset: u32, col_major: bool, stride: u32 }',
    `var<workgroup> emulated_results: array<f32, ${accumulators * M * N}>;`,
    'var<private> emulated_lane: u32;',
    view('panel_a', 'emulated_left_at'),
    view('panel_b', 'emulated_right_at'),
    `fn emulated_zero(slot: u32) -> u32 {
  if (emulated_lane != 0u) { return slot; }
  for (var e = 0u; e < ${M * N}u; e++) { emulated_results[slot * ${M * N}u + e] = 0.0; }
  return slot;
}`,
    `fn emulated_multiply_accumulate(l: EmulatedView, r: EmulatedView, slot: u32) -> u32 {
  if (emulated_lane != 0u) { return slot; }
  for (var i = 0u; i < ${M}u; i++) {
    for (var j = 0u; j < ${N}u; j++) {
      var sum = emulated_results[slot * ${M * N}u + i * ${N}u + j];
      for (var k = 0u; k < ${K}u; k++) { sum += emulated_left_at(l, i, k) * emulated_right_at(r, k, j); }
      emulated_results[slot * ${M * N}u + i * ${N}u + j] = sum;
    }
  }
  return slot;
}`,
    `fn emulated_store(offset: u32, slot: u32, col_major: bool, stride: u32) {
  if (emulated_lane != 0u) { return; }
  for (var r = 0u; r < ${M}u; r++) {
    for (var c = 0u; c < ${N}u; c++) {
      result_tile[select(offset + r * stride + c, offset + c * stride + r, col_major)] =
        emulated_results[slot * ${M * N}u + r * ${N}u + c];
    }
  }
}`,
  ];
  return {
    enables: config.componentType === 'f16' ? ['enable f16;'] : [],
    functions,
    prologue: ['  emulated_lane = lid.x;'],
    left: 'EmulatedView',
    right: 'EmulatedView',
    result: 'u32',
    zero: (slot) => `emulated_zero(${slot}u)`,
    load: (_which, offset, colMajor, stride) => `EmulatedView(${offset}u, ${colMajor}, ${stride}u)`,
    multiplyAccumulate: (l, r, acc) => `emulated_multiply_accumulate(${l}, ${r}, ${acc})`,
    store: (offset, value, colMajor, stride) =>
      `emulated_store(${offset}u, ${value}, ${colMajor}, ${stride}u);`,
  };
}
