// Kernel benchmark of @webtune/tensors: `pnpm bench:kernels` from the repository root, after
// `pnpm build` (it runs the built package, dist/). Prints a table and one JSON row per case,
// {name, shape, ms, gflops} or {name, shape, ms, gbps}; `--json` prints only the JSON rows.
// `--only=<regexp>` keeps the cases whose name matches; `--quick` runs fewer repetitions.
//
// Every case is warmed up (pipelines compiled, buffers pooled), then timed from recording to
// device.sync() returning; the figure is the median. The CPU is shared: compare rows of one run.
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const distEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(distEntry)) {
  console.error('bench: packages/tensors/dist is missing; run `pnpm build` first.');
  process.exit(1);
}
const tensors = await import(distEntry);

const args = process.argv.slice(2);
const jsonOnly = args.includes('--json') || process.env.WEBTUNE_BENCH_JSON === '1';
const quick = args.includes('--quick');
const onlyArgument = args.find((a) => a.startsWith('--only='));
const only = onlyArgument ? new RegExp(onlyArgument.slice('--only='.length)) : null;

const device = await tensors.createDevice();
const rows = [];

function log(line) {
  if (!jsonOnly) console.log(line);
}

log(
  `adapter: ${device.info.vendor} ${device.info.device || device.info.architecture} (${device.info.adapterClass}), ` +
    `matmul tile ${device.tuning.matmulTileRows}x${device.tuning.matmulTileCols}, workgroup ${device.tuning.matmulWorkgroup}`,
);
// Other processes on a shared machine slow every row alike; the load average says how much.
log(`cpus: ${availableParallelism()}, load average at start: ${loadavg()[0].toFixed(2)}`);
log('');
log(`${'case'.padEnd(34)}${'shape'.padEnd(22)}${'ms'.padStart(10)}  rate`);

/** Deterministic values in [-1, 1) without a test-utils dependency. */
function values(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

function median(list) {
  const sorted = [...list].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Times `run` (which records GPU work and returns tensors to dispose) until the GPU is done.
 * `work` is {flops} or {bytes} per run.
 */
async function measure(name, shape, run, work, repetitions = 5) {
  if (only && !only.test(name)) return;
  const warmups = 1;
  const reps = quick ? Math.min(3, repetitions) : repetitions;
  const times = [];
  for (let i = 0; i < warmups + reps; i++) {
    globalThis.gc?.();
    const start = performance.now();
    // The scope disposes whatever the run created once its work is recorded.
    device.scope(() => {
      run();
    });
    await device.sync();
    const elapsed = performance.now() - start;
    if (i >= warmups) times.push(elapsed);
  }
  report(name, shape, median(times), work);
}

function report(name, shape, ms, work) {
  const row = { name, shape, ms: Number(ms.toFixed(4)) };
  let rate = '';
  if (work?.flops) {
    row.gflops = Number((work.flops / ms / 1e6).toFixed(2));
    rate = `${row.gflops} GFLOP/s`;
  } else if (work?.bytes) {
    row.gbps = Number((work.bytes / ms / 1e6).toFixed(2));
    rate = `${row.gbps} GB/s`;
  }
  rows.push(row);
  log(`${name.padEnd(34)}${shape.padEnd(22)}${ms.toFixed(3).padStart(10)}  ${rate}`);
  if (jsonOnly) console.log(JSON.stringify(row));
}

// ---- matmul ------------------------------------------------------------------------------------

/**
 * a [M, K] (or [K, M] with transposeA) x b [K, N] (or [N, K] with transposeB, a weight stored
 * [out, in]); the shape column reads M x K x N.
 */
async function matmulCase(
  name,
  m,
  k,
  n,
  { transposeA = false, transposeB = false, repetitions = 5, tuning = {} } = {},
) {
  if (only && !only.test(name)) return;
  const a = device.fromArray(values(m * k, 1), transposeA ? [k, m] : [m, k], 'f32');
  const b = device.fromArray(values(k * n, 2), transposeB ? [n, k] : [k, n], 'f32');
  // Tuning fields overridden for this case only (to time another kernel variant in the same run).
  const saved = Object.fromEntries(Object.keys(tuning).map((key) => [key, device.tuning[key]]));
  Object.assign(device.tuning, tuning);
  try {
    await measure(
      name,
      `${m}x${k}x${n}`,
      () => tensors.matmul(a, b, { transposeA, transposeB }),
      { flops: 2 * m * n * k },
      repetitions,
    );
  } finally {
    Object.assign(device.tuning, saved);
  }
  a.dispose();
  b.dispose();
  device.trimPool();
}

for (const size of [256, 512, 1024, 2048]) {
  await matmulCase('matmul', size, size, size, { repetitions: size >= 2048 ? 3 : 5 });
}
// stories15M (dim 288, hidden 768, vocab 32000) at 8 x 256 tokens, weights stored [out, in].
await matmulCase('matmul x·Wᵀ (qkv/o)', 2048, 288, 288, { transposeB: true });
await matmulCase('matmul x·Wᵀ (w1/w3)', 2048, 288, 768, { transposeB: true });
await matmulCase('matmul x·Wᵀ (w2)', 2048, 768, 288, { transposeB: true });
// Backward of w1: the input gradient dY·W1 and the weight gradient dYᵀ·X.
await matmulCase('matmul dY·W (w1 input grad)', 2048, 768, 288);
await matmulCase('matmul dYᵀ·X (w1 weight grad)', 768, 2048, 288, { transposeA: true });
// The tied classifier: logits [2048, 32000] exceed a 128 MiB binding and are written in chunks.
await matmulCase('matmul x·Eᵀ (classifier)', 2048, 288, 32000, { transposeB: true, repetitions: 3 });
// Decoding one token (batch 1) and a few at once: the tied LM head and a projection, both
// bandwidth-bound (every weight value is read once per step). The small-M kernel takes up to
// tuning.matmulSmallRowsMax rows; the 'tiled' rows time the tiled kernel on the same product.
const tiled = { tuning: { matmulSmallRowsMax: 0 } };
await matmulCase('matmul decode x·Eᵀ (LM head)', 1, 288, 32000, { transposeB: true, repetitions: 9 });
await matmulCase('matmul decode x·Eᵀ tiled', 1, 288, 32000, { transposeB: true, ...tiled });
await matmulCase('matmul decode x·Wᵀ (w1)', 1, 288, 768, { transposeB: true, repetitions: 9 });
await matmulCase('matmul decode x·Wᵀ (w1) tiled', 1, 288, 768, { transposeB: true, ...tiled });
await matmulCase('matmul decode x·W (w1)', 1, 288, 768, { repetitions: 9 });
await matmulCase('matmul decode x·W (w1) tiled', 1, 288, 768, tiled);
await matmulCase('matmul decode 2 rows x·Eᵀ', 2, 288, 32000, { transposeB: true });
await matmulCase('matmul decode 2 rows x·Eᵀ tiled', 2, 288, 32000, { transposeB: true, ...tiled });

// ---- elementwise -------------------------------------------------------------------------------

{
  const name = 'add f32';
  if (!only || only.test(name)) {
    const count = 16 * 1024 * 1024;
    const x = device.fromArray(values(count, 3), [count], 'f32');
    const y = device.fromArray(values(count, 4), [count], 'f32');
    await measure(name, '16M', () => tensors.add(x, y), { bytes: 3 * 4 * count });
    x.dispose();
    y.dispose();
    device.trimPool();
  }
}

// ---- dispatch overhead -------------------------------------------------------------------------

{
  const name = 'dispatch+submit+wait';
  if (!only || only.test(name) || only.test('dispatch')) {
    const x = device.fromArray([1, 2, 3, 4], [4], 'f32');
    const timeDispatches = async (count) => {
      const start = performance.now();
      device.scope(() => {
        for (let i = 0; i < count; i++) tensors.add(x, 1);
      });
      await device.sync();
      return performance.now() - start;
    };
    for (let i = 0; i < 20; i++) await timeDispatches(1);
    const single = [];
    const batch = [];
    const perSubmit = 100;
    for (let i = 0; i < (quick ? 20 : 60); i++) single.push(await timeDispatches(1));
    for (let i = 0; i < (quick ? 5 : 15); i++) batch.push(await timeDispatches(perSubmit));
    const one = median(single);
    report(name, '1 tiny dispatch', one);
    report(
      'dispatch (one more in a submit)',
      `${perSubmit} per submit`,
      (median(batch) - one) / (perSubmit - 1),
    );
    x.dispose();
  }
}

// ---- ops owned by other areas, measured when the package exports them -------------------------

/**
 * Rows for ops that may not exist yet: each entry names the export it needs and builds a run
 * from it. A missing export skips the row; an op whose signature changed reports its error
 * without stopping the benchmark.
 */
const OPTIONAL_CASES = [
  {
    name: 'softmax',
    needs: ['softmax'],
    shape: [2048, 8192],
    setup: ([rowsCount, vocab]) => ({
      x: device.fromArray(values(rowsCount * vocab, 5), [rowsCount, vocab], 'f32'),
    }),
    run: ({ x }) => tensors.softmax(x, -1),
    work: ([rowsCount, vocab]) => ({ bytes: 2 * 4 * rowsCount * vocab }),
  },
  {
    name: 'rmsNorm',
    needs: ['rmsNorm'],
    shape: [8192, 288],
    setup: ([rowsCount, hidden]) => ({
      x: device.fromArray(values(rowsCount * hidden, 6), [rowsCount, hidden], 'f32'),
      weight: device.fromArray(values(hidden, 7), [hidden], 'f32'),
    }),
    run: ({ x, weight }) => tensors.rmsNorm(x, weight, 1e-5),
    work: ([rowsCount, hidden]) => ({ bytes: 2 * 4 * rowsCount * hidden }),
  },
  {
    name: 'attention (causal)',
    needs: ['attention'],
    // stories15M: batch 8, seq 256, 6 heads of 48.
    shape: [8, 256, 6, 48],
    setup: (shape) => {
      const count = shape.reduce((p, d) => p * d, 1);
      return {
        q: device.fromArray(values(count, 8), shape, 'f32'),
        k: device.fromArray(values(count, 9), shape, 'f32'),
        v: device.fromArray(values(count, 10), shape, 'f32'),
      };
    },
    run: ({ q, k, v }) => tensors.attention(q, k, v, { causal: true }),
    // q·k and p·v over the causal half.
    work: ([batch, seq, heads, headDim]) => ({
      flops: 2 * 2 * batch * heads * headDim * ((seq * (seq + 1)) / 2),
    }),
  },
  {
    name: 'crossEntropy',
    needs: ['crossEntropy'],
    shape: [2048, 32000],
    setup: ([rowsCount, vocab]) => ({
      logits: device.fromArray(values(rowsCount * vocab, 11), [rowsCount, vocab], 'f32'),
      targets: device.fromArray(
        Int32Array.from({ length: rowsCount }, (_, i) => (i * 7919) % vocab),
        [rowsCount],
        'i32',
      ),
    }),
    run: ({ logits, targets }) => tensors.crossEntropy(logits, targets),
    work: ([rowsCount, vocab]) => ({ bytes: 4 * rowsCount * vocab }),
  },
];

for (const testCase of OPTIONAL_CASES) {
  if (only && !only.test(testCase.name)) continue;
  if (!testCase.needs.every((name) => typeof tensors[name] === 'function')) continue;
  let inputs = null;
  try {
    inputs = testCase.setup(testCase.shape);
    await measure(
      testCase.name,
      `[${testCase.shape.join(', ')}]`,
      () => testCase.run(inputs),
      testCase.work(testCase.shape),
    );
  } catch (error) {
    console.error(`bench: ${testCase.name} failed: ${error.message}`);
  } finally {
    for (const tensor of Object.values(inputs ?? {})) tensor.dispose();
    device.trimPool();
  }
}

log(`load average at end: ${loadavg()[0].toFixed(2)}`);
device.destroy();
