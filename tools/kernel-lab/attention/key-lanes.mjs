// The attention forward at small head dims: the key-lanes kernel (lanes split the keys, every lane
// keeps the online softmax of 8 query rows; attentionKeyLanesHeadDim) against the per-query
// kernel (one query row per lane, rows shared with subgroupBroadcast), back to back in one
// process, interleaved. Prints the process CPU time per forward (both lavapipe threads and the
// main thread; other jobs on the cores disturb it less than the wall clock), minimum and median
// of --reps, and checks that both kernels give the same output and log-sum-exp.
// Usage: node key-lanes.mjs [--reps=N] [BxSxHxD ...]   (batch x seq x heads x head dim; causal)
//   default: stories260K's attention, 8 x 256 x 8 x 8.
import { attention, createDevice } from '@webtune/tensors';

const args = process.argv.slice(2);
const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 12);
const given = args.filter((a) => !a.startsWith('--')).map((s) => s.split('x').map(Number));
const shapes = given.length ? given : [[8, 256, 8, 8]];
const devices = {
  'per-query': await createDevice({ tuning: { attentionKeyLanesHeadDim: 0 } }),
  // Up to head dim 16 (larger head dims compile for minutes on lavapipe with the rows written out).
  'key-lanes': await createDevice({ tuning: { attentionKeyLanesHeadDim: 16 } }),
};
const values = (count, seed) => {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
};
const cpuMs = (start) => {
  const now = process.cpuUsage();
  return (now.user - start.user + now.system - start.system) / 1000;
};
for (const [batch, seq, heads, headDim] of shapes) {
  const shape = [batch, seq, heads, headDim];
  const size = batch * seq * heads * headDim;
  const [q, k, v] = [1, 2, 3].map((seed) => values(size, seed));
  const times = {};
  const results = {};
  for (let rep = 0; rep <= reps; rep++) {
    for (const [name, device] of Object.entries(devices)) {
      const inputs = [q, k, v].map((data) => device.fromArray(data, shape, 'f32'));
      await device.sync();
      const start = process.cpuUsage();
      const { output, logsumexp } = attention(inputs[0], inputs[1], inputs[2]);
      await device.sync();
      // The first round compiles the pipelines: not timed.
      if (rep > 0) {
        times[name] ??= [];
        times[name].push(cpuMs(start));
      }
      if (rep === 0) results[name] = [await output.toArray(), await logsumexp.toArray()];
      for (const t of [...inputs, output, logsumexp]) t.dispose();
    }
  }
  const [a, b] = Object.values(results);
  // Largest difference between the kernels' outputs and log-sum-exps (values of order 1).
  let worst = 0;
  for (let part = 0; part < 2; part++) {
    for (let i = 0; i < a[part].length; i++) worst = Math.max(worst, Math.abs(a[part][i] - b[part][i]));
  }
  for (const [name, list] of Object.entries(times)) {
    list.sort((x, y) => x - y);
    console.log(
      JSON.stringify({
        shape: shape.join('x'),
        kernel: name,
        cpu_ms_min: Number(list[0].toFixed(1)),
        cpu_ms_median: Number(list[Math.floor(list.length / 2)].toFixed(1)),
        reps,
        max_abs_difference: Number(worst.toExponential(2)),
      }),
    );
  }
}
for (const device of Object.values(devices)) device.destroy();
