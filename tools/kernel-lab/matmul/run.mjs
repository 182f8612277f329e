// Times matmul variants back to back in one process and checks each against a float64
// reference on sampled rows. Usage: node run.mjs [MxKxN or one size] [variant regexp] [--reps=N]
import { createDevice } from '@webtune/tensors';
import {
  blockedNN,
  blockedNT,
  FIELDS,
  naive,
  packA,
  packB,
  subgroupNN,
  subgroupNT,
  subgroupPacked,
  subgroupUbo,
} from './variants.mjs';

const args = process.argv.slice(2);
const flags = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
const positional = args.filter((a) => !a.startsWith('--'));
// Shapes are M x K x N (a is [M, K], b is [K, N]); one number means a cube.
const dims = (positional[0] ?? '1024').split('x').map(Number);
const [M, K, N] = dims.length === 1 ? [dims[0], dims[0], dims[0]] : dims;
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
  subgroupNN({ R: 8, C: 8 }),
  subgroupNN({ R: 16, C: 4 }),
  subgroupNN({ R: 16, C: 8 }),
  subgroupNN({ R: 24, C: 4 }),
  subgroupNN({ R: 32, C: 4 }),
  subgroupNN({ R: 16, C: 4, kOuter: false }),
  subgroupNN({ R: 32, C: 4, kOuter: false }),
  subgroupNN({ R: 32, C: 8, kOuter: false }),
  subgroupNN({ R: 24, C: 8, kOuter: false }),
  subgroupNT({ R: 32, C: 2 }),
  subgroupPacked({ R: 16, C: 4 }),
  subgroupPacked({ R: 16, C: 4, aDirect: true }),
  subgroupPacked({ R: 24, C: 4, aDirect: true }),
  subgroupUbo({ R: 16, C: 4, chunks: 2 }),
  subgroupUbo({ R: 24, C: 4, chunks: 2 }),
  subgroupUbo({ R: 32, C: 4, chunks: 2 }),
  subgroupUbo({ R: 32, C: 2, chunks: 1 }),
  subgroupUbo({ R: 16, C: 8, chunks: 4 }),
  subgroupPacked({ R: 16, C: 4, unrollK: 2 }),
  subgroupPacked({ R: 24, C: 4 }),
  subgroupPacked({ R: 32, C: 4 }),
  subgroupPacked({ R: 16, C: 6 }),
  subgroupPacked({ R: 32, C: 2 }),
  subgroupPacked({ R: 16, C: 2 }),
  subgroupPacked({ R: 8, C: 8 }),
  subgroupPacked({ R: 32, C: 6 }),
  subgroupPacked({ R: 40, C: 4 }),
  subgroupPacked({ R: 48, C: 4 }),
  subgroupPacked({ R: 24, C: 6 }),
  subgroupPacked({ R: 32, C: 8 }),
  subgroupPacked({ R: 24, C: 3 }),
  subgroupPacked({ R: 32, C: 3 }),
  subgroupPacked({ R: 32, C: 4, unrollK: 2 }),
  subgroupPacked({ R: 24, C: 4, unrollK: 2 }),
  subgroupNT({ R: 32, C: 4 }),
  subgroupNT({ R: 24, C: 4 }),
  subgroupNT({ R: 8, C: 4 }),
  subgroupNT({ R: 16, C: 4 }),
  subgroupNT({ R: 16, C: 2 }),
  subgroupNT({ R: 24, C: 2 }),
].filter((v) => !filter || filter.test(v.key));

const device = await createDevice();
console.log(
  `adapter ${device.info.vendor} ${device.info.device} (${device.info.adapterClass}), M ${M} K ${K} N ${N}`,
);

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

const packed = new Map();
function operands(variant) {
  if (variant.layout === 'nt') return [a, bt];
  if (variant.layout === 'packed-b') return [a, operands({ ...variant, layout: 'packed' })[1]];
  if (variant.layout !== 'packed') return [a, b];
  const key = `${variant.R}x${variant.C}`;
  if (!packed.has(key)) {
    const pa = packA(aData, M, K, variant.R);
    const pb = packB(bData, K, N, variant.C);
    packed.set(key, [device.fromArray(pa, [pa.length], 'f32'), device.fromArray(pb, [pb.length], 'f32')]);
  }
  return packed.get(key);
}

const uboPanels = new Map();
function launchUbo(variant) {
  const key = `${variant.R}x${variant.C}`;
  const [pa] = operands({ ...variant, layout: 'packed' });
  if (!uboPanels.has(key)) {
    const pb = packB(bData, K, N, variant.C);
    const panelVec4 = Math.ceil(K / 4) * 8 * variant.C;
    const panels = [];
    for (let p = 0; p * panelVec4 * 4 < pb.length; p++) {
      const buffer = device.gpu.createBuffer({ size: variant.chunks * 65536, usage: 0x40 | 0x80 | 0x8 });
      device.gpu.queue.writeBuffer(buffer, 0, pb.subarray(p * panelVec4 * 4, (p + 1) * panelVec4 * 4));
      panels.push(buffer);
    }
    uboPanels.set(key, panels);
  }
  uboPanels.get(key).forEach((buffer, panel) => {
    const chunks = [];
    for (let u = 0; u < variant.chunks; u++) chunks.push({ buffer, offset: u * 65536, size: 65536 });
    device.dispatch({
      key: variant.key,
      source: variant.source,
      bindings: [pa, c, ...chunks],
      uniforms: { fields: variant.fields, values: { M, N, K, panel } },
      workgroups: [Math.ceil(M / variant.R)],
    });
  });
}

function launch(variant) {
  if (variant.layout === 'ubo') return launchUbo(variant);
  device.dispatch({
    key: variant.key,
    source: variant.source,
    bindings: [...operands(variant), c],
    uniforms: { fields: FIELDS, values: { M, N, K } },
    workgroups: variant.workgroups(M, N),
  });
}

const flops = 2 * M * N * K;
const times = new Map(variants.map((v) => [v.key, []]));
const cpuTimes = new Map(variants.map((v) => [v.key, []]));
for (const variant of variants) {
  launch(variant);
  const error = check(await c.toArray());
  if (error > 1e-3 * Math.sqrt(K)) console.log(`${variant.key}: WRONG, max error ${error}`);
}
// Interleave variants so drifting CPU load from other processes hits all of them alike.
for (let rep = 0; rep < reps; rep++) {
  for (const variant of variants) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    launch(variant);
    await device.sync();
    times.get(variant.key).push(performance.now() - start);
    const cpu = process.cpuUsage(cpuStart);
    cpuTimes.get(variant.key).push((cpu.user + cpu.system) / 1000);
  }
}
for (const variant of variants) {
  const sorted = times.get(variant.key).sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)];
  const cpuSorted = cpuTimes.get(variant.key).sort((x, y) => x - y);
  const cpuMedian = cpuSorted[Math.floor(cpuSorted.length / 2)];
  // CPU time spread over the 2 cores: a figure that other processes on the machine disturb less.
  console.log(
    `${variant.key.padEnd(28)} median ${median.toFixed(1).padStart(8)} ms  ${(flops / median / 1e6).toFixed(2).padStart(7)} GFLOP/s  (best ${(flops / sorted[0] / 1e6).toFixed(2).padStart(6)}, per 2 cpu-cores ${(flops / (cpuMedian / 2) / 1e6).toFixed(2).padStart(6)})`,
  );
}
device.destroy();
