// Packed-weight matmul benchmark: GFLOP/s of the LoRA step's frozen-base products (forward x Wᵀ
// and input gradient dY W) for every packed format beside the f32 matmul of the same shape.
// `node packages/tensors/bench/packed-matmul.mjs [--only=<regexp>] [--formats=f16,q8_0] [--json]`
// after `pnpm build` (it runs dist/). Each case is warmed up once (pipelines compiled), then timed
// from recording to device.sync(); the figure is the median of 3. Compare rows of one run only.
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const distEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(distEntry)) {
  console.error('bench: packages/tensors/dist is missing; run `pnpm build` first.');
  process.exit(1);
}
const tensors = await import(distEntry);
const args = process.argv.slice(2);
const jsonOnly = args.includes('--json');
const onlyArgument = args.find((a) => a.startsWith('--only='));
const only = onlyArgument ? new RegExp(onlyArgument.slice('--only='.length)) : null;
const formatsArgument = args.find((a) => a.startsWith('--formats='));
const formats = formatsArgument
  ? formatsArgument.slice('--formats='.length).split(',')
  : ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k'];
const repetitions = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 3);

const device = await tensors.createDevice();
const log = (line) => {
  if (!jsonOnly) console.log(line);
};
log(
  `adapter: ${device.info.vendor} ${device.info.device || device.info.architecture} (${device.info.adapterClass})`,
);
log(`load average at start: ${loadavg()[0].toFixed(2)}`);
log(`${'case'.padEnd(40)}${'M x K x N'.padEnd(20)}${'format'.padEnd(8)}${'ms'.padStart(10)}  GFLOP/s`);

function values(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

/** Random Q4_K super-blocks: small positive d and dmin, random scales and nibbles. */
function q4kBytes(rows, cols, seed) {
  const bytes = new Uint8Array(rows * (cols / 256) * 144);
  let state = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[i] = state >>> 24;
  }
  for (let o = 0; o < bytes.length; o += 144) {
    bytes[o] = 0;
    bytes[o + 1] = 0x1c; // d = 2^-8
    bytes[o + 2] = 0;
    bytes[o + 3] = 0x1c;
  }
  return bytes;
}

const median = (list) => [...list].sort((x, y) => x - y)[Math.floor(list.length / 2)];

async function time(run) {
  const times = [];
  for (let i = 0; i < 1 + repetitions; i++) {
    const start = performance.now();
    device.scope(() => {
      run();
    });
    await device.sync();
    if (i > 0) times.push(performance.now() - start);
  }
  return median(times);
}

const rows = [];
/** x [M, K] times a weight [N, K] stored [out, in]: forward x Wᵀ and input gradient dY W. */
async function productCase(name, M, K, N) {
  if (only && !only.test(name)) return;
  const x = device.fromArray(values(M * K, 1), [M, K], 'f32');
  const dy = device.fromArray(values(M * N, 3), [M, N], 'f32');
  const weightValues = values(N * K, 2);
  for (const format of formats) {
    let weight;
    let forward;
    let inputGrad;
    if (format === 'f32') {
      weight = device.fromArray(weightValues, [N, K], 'f32');
      forward = () => tensors.matmul(x, weight, { transposeB: true });
      inputGrad = () => tensors.matmul(dy, weight);
    } else {
      if (format === 'q4_k' && K % 256 !== 0) continue;
      weight =
        format === 'q4_k'
          ? tensors.packedWeightFromBytes(device, 'q4_k', [N, K], q4kBytes(N, K, 5))
          : tensors.packWeight(device, weightValues, [N, K], format);
      forward = () => tensors.packedMatmul(x, weight);
      inputGrad = () => tensors.packedMatmulInputGrad(dy, weight);
    }
    const flops = 2 * M * N * K;
    for (const [kind, run] of [
      ['x·Wᵀ', forward],
      ['dY·W', inputGrad],
    ]) {
      const ms = await time(run);
      const row = { name: `${name} ${kind}`, shape: `${M}x${K}x${N}`, format, ms: Number(ms.toFixed(3)) };
      row.gflops = Number((flops / ms / 1e6).toFixed(2));
      rows.push(row);
      log(
        `${row.name.padEnd(40)}${row.shape.padEnd(20)}${format.padEnd(8)}${ms.toFixed(2).padStart(10)}  ${row.gflops}`,
      );
      if (jsonOnly) console.log(JSON.stringify(row));
    }
    weight.dispose();
    device.trimPool();
  }
  x.dispose();
  dy.dispose();
}

// stories15M shape (dim 288, hidden 768) at a LoRA step of 4 x 128 tokens.
await productCase('15M q/k/v/o', 512, 288, 288);
await productCase('15M w1/w3', 512, 288, 768);
await productCase('15M w2', 512, 768, 288);
// Qwen3-0.6B shape (hidden 1024, intermediate 3072, 16/8 heads of 128) at 1 x 128 tokens.
await productCase('0.6B gate/up', 128, 1024, 3072);
await productCase('0.6B down', 128, 3072, 1024);
await productCase('0.6B q', 128, 1024, 2048);
await productCase('0.6B k/v', 128, 1024, 1024);
await productCase('0.6B o', 128, 2048, 1024);
// The tied head at the 0.6B shape's vocabulary: weights above one binding, split in chunks.
await productCase('0.6B tied head', 128, 1024, 151936);
// Decoding one token (a few rows take the 8-row tile).
await productCase('decode 0.6B gate/up', 1, 1024, 3072);
device.gpu.destroy?.();
