// The one-row packed product (packed-rowvec.ts) against the tiled packed kernel it replaces at
// one row: x [1, K] times a packed W [N, K] (the stories15M shape's head and projections), the two
// kernels alternating in one process on two devices that differ only in `matmulSmallRowsMax`
// (0 turns the one-row kernel off), so the shared machine's load hits both alike.
//   node packages/tensors/bench/packed-rowvec.mjs [--formats=q8_0,q4_0] [--reps=7] [--iterations=20]
// after `pnpm build` (it runs dist/). Each timing records `iterations` products, then syncs;
// the figure is the median over the repetitions of the time per product (µs), after a warm-up.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const tensors = await import(fileURLToPath(new URL('../dist/index.js', import.meta.url)));
const args = process.argv.slice(2);
const option = (name, fallback) =>
  args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const formats = option('formats', 'q8_0,q4_0').split(',');
const reps = Number(option('reps', 7));
const iterations = Number(option('iterations', 20));
const SHAPES = [
  ['head', 32000, 288],
  ['gate', 768, 288],
  ['down', 288, 768],
];
const devices = {
  rowvec: await tensors.createDevice(),
  tiled: await tensors.createDevice({ tuning: { matmulSmallRowsMax: 0 } }),
};
console.log(`load average at start: ${loadavg()[0].toFixed(2)}`);
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
for (const format of formats) {
  for (const [name, N, K] of SHAPES) {
    const weights = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37));
    const x = Float32Array.from({ length: K }, (_, i) => Math.cos(i * 0.11));
    const setups = Object.fromEntries(
      Object.entries(devices).map(([kind, device]) => [
        kind,
        {
          device,
          w: tensors.packWeight(device, weights, [N, K], format),
          x: device.fromArray(x, [1, K], 'f32').keep(),
        },
      ]),
    );
    const times = { rowvec: [], tiled: [] };
    for (let rep = 0; rep <= reps; rep++) {
      for (const kind of Object.keys(devices)) {
        const { device, w, x: input } = setups[kind];
        const started = performance.now();
        await device.scope(async () => {
          for (let i = 0; i < iterations; i++) tensors.packedMatmul(input, w);
          await device.sync();
        });
        if (rep > 0) times[kind].push(((performance.now() - started) * 1000) / iterations);
      }
    }
    const row = {
      case: `${name} x[1, ${K}] W[${N}, ${K}]`,
      format,
      rowvec_us: +median(times.rowvec).toFixed(0),
      tiled_us: +median(times.tiled).toFixed(0),
      speedup: +(median(times.tiled) / median(times.rowvec)).toFixed(2),
    };
    console.log(JSON.stringify(row));
    for (const { w, x: input } of Object.values(setups)) {
      w.dispose();
      input.dispose();
    }
  }
}
console.log(`load average at end: ${loadavg()[0].toFixed(2)}`);
for (const device of Object.values(devices)) device.destroy();
