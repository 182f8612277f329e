/*
 * WGSL pieces shared by the kernels whose lanes own rows and walk the other side in chunks, each
 * chunk's rows loaded one per lane and handed to every lane by subgroupBroadcast (row-lanes.ts,
 * row-lanes-backward.ts, prompt-attention.ts). Their loops are written out: private arrays
 * indexed in loops live in memory on lavapipe.
 */

/** `count` lines (or terms) from `line`, joined. */
export const each = (count: number, line: (index: number) => string, join = '\n') =>
  Array.from({ length: count }, (_, index) => line(index)).join(join);

/** Item t of a chunk: loaded by lane t % lanes into `${name}_${t / lanes}`, broadcast from there. */
export const broadcastOf = (name: string, t: number, lanes: number) =>
  `subgroupBroadcast(${name}_${Math.floor(t / lanes)}, ${t % lanes}u)`;

/**
 * Each lane's key and value vectors of a chunk: per load group g (chunk / lanes of them), the
 * lines `head(g)` (which must define `lane_at_${g}`, the row's first vec4) and then the row's
 * `vectors` vec4s of k and v as `lane_k_${c}_${g}`, `lane_v_${c}_${g}`.
 */
export function chunkKeyValueLoads(groups: number, vectors: number, head: (g: number) => string[]): string {
  return each(groups, (g) =>
    [
      ...head(g),
      each(
        vectors,
        (c) =>
          `    let lane_k_${c}_${g} = k[lane_at_${g} + ${c}u];\n    let lane_v_${c}_${g} = v[lane_at_${g} + ${c}u];`,
      ),
    ].join('\n'),
  );
}

/** Every key t of the chunk in every lane: `key_${t}`, its mask word and its key and value vec4s. */
export function chunkKeyValueBroadcasts(chunk: number, vectors: number, lanes: number): string {
  return each(chunk, (t) =>
    [
      `    let key_${t} = start + ${t}u;`,
      `    let word_${t} = ${broadcastOf('lane_word', t, lanes)};`,
      each(vectors, (c) => `    let key_${t}_${c} = ${broadcastOf(`lane_k_${c}`, t, lanes)};`),
      each(vectors, (c) => `    let value_${t}_${c} = ${broadcastOf(`lane_v_${c}`, t, lanes)};`),
    ].join('\n'),
  );
}
