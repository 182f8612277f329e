// Times matmul variants back to back in one process and checks each against a float64
// reference on sampled rows. Usage: node run.mjs [size] [variant-filter] [--reps=N]
import { createDevice } from '@webtune/tensors';
import { blockedNN, blockedNT, FIELDS, naive } from './variants.mjs';

const args = process.argv.slice(2);
const flags = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
const positional = args.filter((a) => !a.startsWith('--'));
const [M, N, K] = (positional[0] ?? '1024').split('x').map(Number).concat([]).length === 1
  ? Array(3).fill(Number(positional[0] ?? 1024))
  : positional[0].split('x').map(Number);
const filter = positional[1] ? new RegExp(positional[1]) : null;
const reps = Number(flags.reps ?? 5);

const variants = [
  naive(),
  blockedNN({ R: 8, C: 8 }),
  blockedNN({ R: 8, C: 8, unroll: 4 }),
  blockedNN({ R: 4, C: 8, unroll: 4 }),
  blockedNN({ R: 8, C: 4, unroll: 4 }),
  blockedNN({ R: 16, C: 4, unroll: 4 }),
  blockedNN({ R: 4, C: 16, unroll: 4 }),
  blockedNN({ R: 6, C: 8, unroll: 4 }),
  blockedNN({ R: 12, C: 4, unroll: 4 }),
  blockedNN({ R: 8, C: 8, unroll: 4, lanes: 16 }),
  blockedNN({ R: 8, C: 8, unroll: 4, scalarA: true }),
  blockedNT({ R: 8, C: 8 }),
  blockedNT({ R: 8, C: 4 }),
  blockedNT({ R: 16, C: 4 }),
  blockedNT({ R: 4, C: 4 }),
  blockedNT({ R: 8, C: 8, useDot: true }),
].filter((v) => !filter || filter.test(v.key));

const device = await createDevice();
console.log(`adapter ${device.info.vendor} ${device.info.device} (${device.info.adapterClass}), ${M}x${N}x${K}`);

function seeded(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}
const aData = seeded(M * K, 1);
const bData = seeded(K * N, 2);
const btData = new Float32Array(N * K);
for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) btData[n * K + k] = bData[k * N + n];
const a = device.fromArray(aData, [M, K], 'f32');
const b = device.fromArray(bData, [K, N], 'f32');
const bt = device.fromArray(btData, [N, K], 'f32');
const c = device.empty([M, N], 'f32');

const sampleRows = [0, 1, M - 1, Math.floor(M / 2), Math.floor(M / 3)];
function check(result) {
  let worst = 0;
  for (const row of sampleRows) {
    for (let col = 0; col < N; col++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += aData[row * K + k] * bData[k * N + col];
      worst = Math.max(worst, Math.abs(result[row * N + col] - sum));
    }
  }
  return worst;
}

function launch(variant) {
  device.dispatch({
    key: variant.key,
    source: variant.source,
    bindings: [a, variant.layout === 'nt' ? bt : b, c],
    uniforms: { fields: FIELDS, values: { M, N, K } },
    workgroups: variant.workgroups(M, N),
  });
}

const flops = 2 * M * N * K;
const times = new Map(variants.map((v) => [v.key, []]));
for (const variant of variants) {
  launch(variant);
  const error = check(await c.toArray());
  if (error > 1e-3 * Math.sqrt(K)) console.log(`${variant.key}: WRONG, max error ${error}`);
}
// Interleave variants so drifting CPU load from other processes hits all of them alike.
for (let rep = 0; rep < reps; rep++) {
  for (const variant of variants) {
    const start = performance.now();
    launch(variant);
    await device.sync();
    times.get(variant.key).push(performance.now() - start);
  }
}
for (const variant of variants) {
  const sorted = times.get(variant.key).sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(
    `${variant.key.padEnd(28)} median ${median.toFixed(1).padStart(8)} ms  ${(flops / median / 1e6).toFixed(2).padStart(7)} GFLOP/s  (best ${(flops / sorted[0] / 1e6).toFixed(2)})`,
  );
}
device.destroy();
