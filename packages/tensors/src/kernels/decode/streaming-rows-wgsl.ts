/*
 * WGSL pieces of the streaming head (decode-head.ts), kept apart for any other streaming product:
 * a workgroup of STREAMING_LANES lanes (one subgroup) splits K in vec4 chunks (lane l takes chunks
 * l, l + 8, ...), keeps x's rows, normalised, in registers, and walks a block of weight rows, each
 * read once with its vec4s contiguous over the lanes and summed with subgroupAdd. On lavapipe this
 * streams a weight at about twice the rate of decode's matvec (4 lanes x 8 outputs per workgroup,
 * x re-read per output group).
 */

/** Lanes of a streaming workgroup: one subgroup of lavapipe (8 f32 lanes). */
export const STREAMING_LANES = 8;
/** Rows of x the streaming products keep in registers. */
export const STREAMING_MAX_ROWS = 4;
/**
 * Largest K they take (vec4 chunks of x per lane: K / 32, in registers). Measured on lavapipe
 * (32000-row f32 head, process CPU per head, alternating with decode's matvec): 5.5-6.3 against
 * 8.5-8.7 ms at K 288, 7.3-7.7 against 9.8-10.2 at 384, but 15-18 against 12.7-12.8 at 512 and
 * no better at 1024 (x spilled from registers).
 */
export const STREAMING_MAX_K = 384;

/** Chunks per lane and whether the last one runs past K (K / 4 not a multiple of the lanes). */
export function streamingChunks(k4: number): { chunks: number; ragged: boolean } {
  return { chunks: Math.ceil(k4 / STREAMING_LANES), ragged: k4 % STREAMING_LANES !== 0 };
}

/**
 * Declares at_i (lane l's vec4 index of chunk i, clamped into the row), in_i for a ragged last
 * chunk, and a_r_i: row r of x (binding `x`, rows k4 vec4s apart) times the gain `g` and the row's
 * inverse RMS where `norm`; zero past K.
 */
export function streamingPrologue(rows: number, k4: number, norm: boolean): string[] {
  const { chunks, ragged } = streamingChunks(k4);
  const L = STREAMING_LANES;
  const lines: string[] = [];
  for (let i = 0; i < chunks; i++) {
    const last = ragged && i === chunks - 1;
    lines.push(`  let at_${i} = ${last ? `min(lid.x + ${i * L}u, ${k4 - 1}u)` : `lid.x + ${i * L}u`};`);
    if (last) lines.push(`  let in_${i} = lid.x + ${i * L}u < ${k4}u;`);
  }
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < chunks; i++)
      lines.push(
        `  let x_${r}_${i} = ${streamingGuard(k4, i, `x[${r * k4}u + at_${i}]`, 'vec4<f32>(0.0)')};`,
      );
    if (norm) {
      const squares = Array.from({ length: chunks }, (_, i) => `dot(x_${r}_${i}, x_${r}_${i})`).join(' + ');
      lines.push(`  let inv_${r} = inverseSqrt(subgroupAdd(${squares}) * ${1 / (k4 * 4)} + params.eps);`);
      for (let i = 0; i < chunks; i++) lines.push(`  let a_${r}_${i} = x_${r}_${i} * g[at_${i}] * inv_${r};`);
    } else for (let i = 0; i < chunks; i++) lines.push(`  let a_${r}_${i} = x_${r}_${i};`);
  }
  return lines;
}

/** `value` where chunk i is inside K, else `zero` (only the ragged last chunk is guarded). */
export function streamingGuard(k4: number, i: number, value: string, zero: string): string {
  const { chunks, ragged } = streamingChunks(k4);
  return ragged && i === chunks - 1 ? `select(${zero}, ${value}, in_${i})` : value;
}

/**
 * The sums of one weight row: `acc_<name>_r` accumulates a_r_i times the row's chunk i, loaded by
 * `load(at)` (an expression of the vec4 index `at`, relative to the row's first vec4 `row`).
 * A lane past K adds nothing (select, not a zero factor: 0 * inf would be NaN).
 */
export function streamingRowSums(
  rows: number,
  k4: number,
  name: string,
  row: string,
  load: (at: string) => string,
): string[] {
  const { chunks } = streamingChunks(k4);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) lines.push(`    var acc_${name}_${r} = vec4<f32>(0.0);`);
  for (let i = 0; i < chunks; i++) {
    lines.push(`    let w_${name}_${i} = ${load(`${row} + at_${i}`)};`);
    for (let r = 0; r < rows; r++)
      lines.push(
        `    acc_${name}_${r} = ${streamingGuard(k4, i, `fma(a_${r}_${i}, w_${name}_${i}, acc_${name}_${r})`, `acc_${name}_${r}`)};`,
      );
  }
  for (let r = 0; r < rows; r++)
    lines.push(
      `    let total_${name}_${r} = subgroupAdd(acc_${name}_${r}.x + acc_${name}_${r}.y + acc_${name}_${r}.z + acc_${name}_${r}.w);`,
    );
  return lines;
}
