// Compares tile tunings of the package's matmul (the built dist) back to back in one process,
// interleaved, each checked against the float64 reference on sampled rows.
// Usage: node tunings.mjs [MxKxN ...] [--reps=N] [--transposeB]
import { createDevice, matmul } from '@webtune/tensors';

const args = process.argv.slice(2);
const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 5);
const transposeB = args.includes('--transposeB');
// --packA adds runs with a given as [K, M] and transposeA: the package then packs it.
const packModes = args.includes('--packA') ? [false, true] : [false];
const only = args
  .find((a) => a.startsWith('--tiles='))
  ?.slice(8)
  .split(',');
const shapes = args.filter((a) => !a.startsWith('--')).map((s) => s.split('x').map(Number));
if (shapes.length === 0) shapes.push([1024, 1024, 1024]);

const TUNINGS = [
  { matmulTileRows: 16, matmulTileCols: 4 },
  { matmulTileRows: 24, matmulTileCols: 4 },
  { matmulTileRows: 32, matmulTileCols: 4 },
  { matmulTileRows: 16, matmulTileCols: 8 },
  { matmulTileRows: 8, matmulTileCols: 8 },
  { matmulTileRows: 8, matmulTileCols: 8, matmulSubgroups: false },
];
const devices = [];
for (const tuning of TUNINGS) devices.push({ tuning, device: await createDevice({ tuning }) });

function transpose(data, rows, cols) {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

function values(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

for (const [M, K, N] of shapes) {
  const aData = values(M * K, 1);
  const bData = values(K * N, 2);
  const runs = packModes
    .flatMap((packA) =>
      devices.map(({ tuning, device }) => ({
        packA,
        label: `${tuning.matmulTileRows}x${tuning.matmulTileCols}${tuning.matmulSubgroups === false ? ' no-subgroups' : ''}${packA ? ' packA' : ''}`,
        device,
        a: packA
          ? device.fromArray(transpose(aData, M, K), [K, M], 'f32')
          : device.fromArray(aData, [M, K], 'f32'),
        b: device.fromArray(bData, transposeB ? [N, K] : [K, N], 'f32'),
        wall: [],
        cpu: [],
      })),
    )
    .filter((run) => !only || only.includes(run.label.split(' ')[0]));
  for (const run of runs) {
    const out = await matmul(run.a, run.b, { transposeA: run.packA, transposeB }).toArray();
    let worst = 0;
    for (const row of [0, M - 1, M >> 1]) {
      for (let col = 0; col < N; col += Math.max(1, N >> 6)) {
        let sum = 0;
        for (let k = 0; k < K; k++)
          sum += aData[row * K + k] * (transposeB ? bData[col * K + k] : bData[k * N + col]);
        worst = Math.max(worst, Math.abs(sum - out[row * N + col]));
      }
    }
    if (worst > 1e-3 * Math.sqrt(K)) console.log(`${run.label}: WRONG by ${worst}`);
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const run of runs) {
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      run.device.scope(() => {
        matmul(run.a, run.b, { transposeA: run.packA, transposeB });
      });
      await run.device.sync();
      run.wall.push(performance.now() - start);
      const cpu = process.cpuUsage(cpuStart);
      run.cpu.push((cpu.user + cpu.system) / 1000);
    }
  }
  const flops = 2 * M * N * K;
  const median = (list) => [...list].sort((x, y) => x - y)[Math.floor(list.length / 2)];
  console.log(`M ${M} K ${K} N ${N}${transposeB ? ' (b transposed)' : ''}`);
  for (const run of runs) {
    const wall = median(run.wall);
    console.log(
      `  ${run.label.padEnd(22)} ${wall.toFixed(1).padStart(8)} ms  ${(flops / wall / 1e6).toFixed(2).padStart(6)} GFLOP/s` +
        `  (per 2 cpu-cores ${(flops / (median(run.cpu) / 2) / 1e6).toFixed(2)})`,
    );
    run.a.dispose();
    run.b.dispose();
  }
}
for (const { device } of devices) device.destroy();
