// Compares tunings of the package's small-M matmul kernel (decoding: a few rows against a
// weight) with the tiled kernel (matmulSmallRowsMax: 0), back to back in one process,
// interleaved, each checked against a float64 reference on every output.
// Usage: node small-rows.mjs [MxKxN ...] [--nn] [--reps=N] [--tunings=lanes x cols,...]
//   e.g. node small-rows.mjs 1x288x32000 5x288x32000 --tunings=8x8,8x4,tiled
import { createDevice, matmul } from '@webtune/tensors';

const args = process.argv.slice(2);
const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 7);
const transposeB = !args.includes('--nn');
const only = args
  .find((a) => a.startsWith('--tunings='))
  ?.slice(10)
  .split(',');
const shapes = args.filter((a) => !a.startsWith('--')).map((s) => s.split('x').map(Number));
if (shapes.length === 0) shapes.push([1, 288, 32000]);

const tuningOf = (label) => {
  if (label === 'tiled') return { label, tuning: { matmulSmallRowsMax: 0 } };
  const [lanes, cols] = label.split('x').map(Number);
  return {
    label,
    tuning: { matmulSmallRowsMax: 8, matmulSmallRowsLanes: lanes, matmulSmallRowsCols: cols },
  };
};
const TUNINGS = (only ?? ['tiled', '8x4', '8x8', '4x8', '4x4', '16x4', '64x4']).map(tuningOf);

function values(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

const median = (list) => [...list].sort((x, y) => x - y)[Math.floor(list.length / 2)];

for (const [M, K, N] of shapes) {
  const aData = values(M * K, 1);
  const bData = values(K * N, 2);
  const expected = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++)
        sum += aData[m * K + k] * (transposeB ? bData[n * K + k] : bData[k * N + n]);
      expected[m * N + n] = sum;
    }
  }
  const runs = [];
  for (const { label, tuning } of TUNINGS) {
    const device = await createDevice({ tuning });
    const a = device.fromArray(aData, [M, K], 'f32');
    const b = device.fromArray(bData, transposeB ? [N, K] : [K, N], 'f32');
    const started = performance.now();
    const first = await device.scope(() => matmul(a, b, { transposeB }).toArray());
    const compileMs = performance.now() - started;
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(first[i] - expected[i]));
    if (worst > 1e-4 * Math.sqrt(K)) console.log(`${label}: WRONG, max error ${worst}`);
    runs.push({ label, device, a, b, compileMs, times: [], cpuTimes: [] });
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const run of runs) {
      const started = performance.now();
      const cpuStarted = process.cpuUsage();
      run.device.scope(() => matmul(run.a, run.b, { transposeB }));
      await run.device.sync();
      run.times.push(performance.now() - started);
      const cpu = process.cpuUsage(cpuStarted);
      run.cpuTimes.push((cpu.user + cpu.system) / 1000);
    }
  }
  console.log(`${M}x${K}x${N} ${transposeB ? 'a·bᵀ' : 'a·b'}`);
  for (const run of runs) {
    const ms = median(run.times);
    const best = Math.min(...run.times);
    const cpuMs = median(run.cpuTimes);
    const gbps = (4 * (K * N + M * K + M * N)) / ms / 1e6;
    // CPU time of the process (lavapipe's threads included): less disturbed by other jobs.
    console.log(
      `  ${run.label.padEnd(8)} median ${ms.toFixed(2).padStart(8)} ms (best ${best.toFixed(2)}, cpu ${cpuMs.toFixed(1)} ms)  ${gbps.toFixed(2).padStart(6)} GB/s  first call ${run.compileMs.toFixed(0)} ms`,
    );
    run.device.destroy();
  }
}
