// The f32 matmul at the exact products of one LoRA SFT step at the stories15M shape (4 x 256
// tokens, dim 288, hidden 768, vocab 32000, LoRA r 8), each with the layout the step uses
// (weights stored [out, in], the backward's operands read as stored). GFLOP/s per product, wall
// clock (median) and per process CPU time (spread over the cores the adapter runs on).
//
//   pnpm --filter @webtune/tensors build && node --expose-gc packages/tensors/bench/matmul-shapes.mjs
//     [--only=<regexp>] [--reps=N] [--json] [--tuning=<JSON of Tuning overrides>] [--dawn=<options>]
//
// The CPU is shared: compare rows of one run, and read the load average printed at the start.
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const distEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(distEntry)) {
  console.error('matmul-shapes: packages/tensors/dist is missing; run `pnpm build` first.');
  process.exit(1);
}
const tensors = await import(distEntry);

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const jsonOnly = args.includes('--json');
const only = option('only') ? new RegExp(option('only')) : null;
const reps = Number(option('reps') ?? 3);
const tuning = option('tuning') ? JSON.parse(option('tuning')) : undefined;
// --dawn=<option>,...: Dawn's create() options, e.g. enable-dawn-features=<toggle>.
const dawnOptions = option('dawn')?.split(',');
const device = await tensors.createDevice({ tuning, dawnOptions });
const threads = Number(process.env.LP_NUM_THREADS ?? availableParallelism());

const log = (line) => {
  if (!jsonOnly) console.log(line);
};
log(
  `adapter: ${device.info.vendor} ${device.info.device || device.info.architecture} (${device.info.adapterClass}); ` +
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);
log(
  `${'product'.padEnd(30)}${'M x K x N'.padEnd(20)}${'layout'.padEnd(14)}${'ms'.padStart(9)}${'GFLOP/s'.padStart(9)}${'per CPU'.padStart(9)}`,
);

function values(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 31 - 1) * 0.1;
  }
  return out;
}

const median = (list) => [...list].sort((x, y) => x - y)[Math.floor(list.length / 2)];

const T = 1024;
const D = 288;
const F = 768;
const V = 32000;
const R = 8;
const CHUNK = 256;

// name, M, K, N, options; count = how many such products one step makes.
const cases = [
  ['fwd x·Wᵀ q/k/v/o', T, D, D, { transposeB: true }, 24],
  ['fwd x·Wᵀ gate/up', T, D, F, { transposeB: true }, 12],
  ['fwd x·Wᵀ down', T, F, D, { transposeB: true }, 6],
  ['bwd dy·W q/k/v/o', T, D, D, {}, 24],
  ['bwd dy·W gate/up', T, F, D, {}, 12],
  ['bwd dy·W down', T, D, F, {}, 6],
  ['lora x·Aᵀ (d 288)', T, D, R, { transposeB: true }, 30],
  ['lora x·Aᵀ (d 768)', T, F, R, { transposeB: true }, 6],
  ['lora s·u·Bᵀ + y (n 288)', T, R, D, { transposeB: true, alpha: 2, residual: true }, 30],
  ['lora s·u·Bᵀ + y (n 768)', T, R, F, { transposeB: true, alpha: 2, residual: true }, 12],
  ['lora du = dy·B (n 288)', T, D, R, { alpha: 2 }, 30],
  ['lora dB = dyᵀ·u (n 288)', D, T, R, { transposeA: true, alpha: 2 }, 30],
  ['lora dB = dyᵀ·u (n 768)', F, T, R, { transposeA: true, alpha: 2 }, 12],
  ['lora dA = duᵀ·x (d 288)', R, T, D, { transposeA: true }, 30],
  ['lora dA = duᵀ·x (d 768)', R, T, F, { transposeA: true }, 6],
  ['lora dx += du·A (d 288)', T, R, D, { residual: true }, 30],
  // A frozen head's chunks compute the logits once (tokenCrossEntropy's `frozen`; checkpointed
  // chunks computed them twice).
  ['classifier h·Eᵀ (chunk)', CHUNK, D, V, { transposeB: true }, 4],
  ['classifier h·Eᵀ (whole)', T, D, V, { transposeB: true }, 0],
  ['classifier dh = dz·E (chunk)', CHUNK, V, D, {}, 4],
  ['classifier dE = dzᵀ·h (chunk)', V, CHUNK, D, { transposeA: true }, 0],
];

const results = [];
for (const [name, m, k, n, options, count] of cases) {
  if (only && !only.test(name)) continue;
  const { transposeA = false, transposeB = false, alpha, residual } = options;
  const a = device.fromArray(values(m * k, 1), transposeA ? [k, m] : [m, k], 'f32');
  const b = device.fromArray(values(k * n, 2), transposeB ? [n, k] : [k, n], 'f32');
  const res = residual ? device.fromArray(values(m * n, 3), [m, n], 'f32') : null;
  const times = [];
  const cpu = [];
  for (let i = 0; i < 1 + reps; i++) {
    globalThis.gc?.();
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    device.scope(() => {
      tensors.matmul(a, b, { transposeA, transposeB, alpha, residual: res });
    });
    await device.sync();
    const used = process.cpuUsage(cpuStart);
    if (i > 0) {
      times.push(performance.now() - start);
      cpu.push((used.user + used.system) / 1000);
    }
  }
  const flops = 2 * m * n * k;
  const ms = median(times);
  const row = {
    name,
    shape: `${m}x${k}x${n}`,
    layout: `${transposeA ? 'aT' : 'a'}·${transposeB ? 'bT' : 'b'}${alpha ? ' α' : ''}${residual ? ' +r' : ''}`,
    ms: Number(ms.toFixed(3)),
    gflops: Number((flops / ms / 1e6).toFixed(2)),
    gflopsPerCpu: Number(((flops / median(cpu) / 1e6) * Math.min(threads, 2)).toFixed(2)),
    perStep: count,
  };
  results.push(row);
  log(
    `${name.padEnd(30)}${row.shape.padEnd(20)}${row.layout.padEnd(14)}${ms.toFixed(2).padStart(9)}${String(row.gflops).padStart(9)}${String(row.gflopsPerCpu).padStart(9)}`,
  );
  if (jsonOnly) console.log(JSON.stringify(row));
  a.dispose();
  b.dispose();
  res?.dispose();
  device.trimPool();
}
const stepMs = results.reduce((sum, row) => sum + row.ms * row.perStep, 0);
log(
  `matmul time of one step at these rates (classifier in 4 chunks of 256 rows, logits computed once): ${stepMs.toFixed(0)} ms`,
);
log(
  `load average at the end ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
