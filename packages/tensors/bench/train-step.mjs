// Training-step benchmark of @webtune/tensors: forward + backward of one Llama decoder layer at
// the stories15M shape (batch 8, seq 256, hidden 288, 6 heads, 6 kv heads, ffn 768), on WebGPU,
// beside the same step in PyTorch on the CPU of the same machine, in the same run.
//
//   pnpm --filter @webtune/tensors bench:step      (after `pnpm build`; it runs dist/)
//   options: --steps=N (timed steps, default 3), --batch= --seq= --dim= --heads= --kv-heads= --ffn=
//
// The PyTorch side (tools/bench/llama_layer_step.py) runs when /usr/bin/python3 imports torch; the
// script says so when it does not. Both sides time the same work: the layer's forward, then
// backward from a fixed upstream gradient into the input and all nine weights. One warm-up step
// (pipeline compilation, buffer pool) is not timed; the figure is the median step, measured on
// the WebGPU side from recording to device.sync() returning.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const distEntry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(distEntry)) {
  console.error('bench:step: packages/tensors/dist is missing; run `pnpm build` first.');
  process.exit(1);
}
const t = await import(distEntry);
const { autograd: ag } = t;

const options = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--') && a.includes('='))
    .map((a) => {
      const [key, value] = a.slice(2).split('=');
      return [key, Number(value)];
    }),
);
const shape = {
  batch: options.batch ?? 8,
  seq: options.seq ?? 256,
  dim: options.dim ?? 288,
  heads: options.heads ?? 6,
  kvHeads: options['kv-heads'] ?? 6,
  ffn: options.ffn ?? 768,
};
const steps = options.steps ?? 3;
const headDim = shape.dim / shape.heads;
const tokens = shape.batch * shape.seq;

/** Deterministic values with standard deviation ~`std`, without a test-utils dependency. */
function values(count, seed, std = 1) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * std * Math.sqrt(3);
  }
  return out;
}

const device = await t.createDevice();
const tensor = (data, dims) => device.fromArray(data, dims, 'f32');
const { dim, ffn, kvHeads, heads, batch, seq } = shape;
const weight = (rows, columns, seed) =>
  tensor(values(rows * columns, seed, 1 / Math.sqrt(columns)), [rows, columns]);
const params = {
  attentionNorm: tensor(new Float32Array(dim).fill(1), [dim]),
  wq: weight(dim, dim, 1),
  wk: weight(kvHeads * headDim, dim, 2),
  wv: weight(kvHeads * headDim, dim, 3),
  wo: weight(dim, dim, 4),
  mlpNorm: tensor(new Float32Array(dim).fill(1), [dim]),
  wGate: weight(ffn, dim, 5),
  wUp: weight(ffn, dim, 6),
  wDown: weight(dim, ffn, 7),
};
for (const p of Object.values(params)) t.requiresGrad(p);
const input = t.requiresGrad(tensor(values(tokens * dim, 8), [batch, seq, dim]));
const upstream = tensor(values(tokens * dim, 9), [batch, seq, dim]);
const half = headDim / 2;
const cos = new Float32Array(seq * half);
const sin = new Float32Array(seq * half);
for (let s = 0; s < seq; s++) {
  for (let i = 0; i < half; i++) {
    const angle = s / 10000 ** ((2 * i) / headDim);
    cos[s * half + i] = Math.cos(angle);
    sin[s * half + i] = Math.sin(angle);
  }
}
const tables = { cos: tensor(cos, [seq, half]), sin: tensor(sin, [seq, half]) };

/** One Llama decoder layer (pre-norm GQA attention with rotate-half RoPE, SwiGLU MLP). */
function layer(h) {
  const linear = (x, w) => ag.matmul(x, w, { transposeB: true });
  const split = (x, count) => ag.reshape(x, [batch, seq, count, headDim]);
  const a = ag.rmsNorm(h, params.attentionNorm, 1e-5);
  const q = ag.rotary(split(linear(a, params.wq), heads), tables.cos, tables.sin, { style: 'half' });
  const k = ag.rotary(split(linear(a, params.wk), kvHeads), tables.cos, tables.sin, { style: 'half' });
  const v = split(linear(a, params.wv), kvHeads);
  const { output } = ag.attention(q, k, v, { causal: true });
  const h1 = ag.add(h, linear(ag.reshape(output, [batch, seq, dim]), params.wo));
  const m = ag.rmsNorm(h1, params.mlpNorm, 1e-5);
  return ag.add(h1, linear(ag.swiglu(linear(m, params.wGate), linear(m, params.wUp)), params.wDown));
}

async function step() {
  const start = performance.now();
  // The forward runs in a scope: what backward does not need is freed when it returns.
  const out = device.scope(() => layer(input));
  t.backward(out, upstream);
  out.dispose();
  await device.sync();
  const ms = performance.now() - start;
  t.zeroGrad([input, ...Object.values(params)]);
  return ms;
}

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
console.log(
  `Llama decoder layer, forward + backward: batch ${batch}, seq ${seq}, hidden ${dim}, ${heads} heads ` +
    `(${kvHeads} kv), ffn ${ffn}; ${tokens} tokens per step`,
);
console.log(
  `adapter: ${device.info.vendor} ${device.info.device || device.info.architecture} (${device.info.adapterClass})`,
);
await step();
const base = device.memory().liveBytes;
device.resetPeak();
const times = [];
for (let i = 0; i < steps; i++) times.push(await step());
const webgpuMs = median(times);
const peak = device.memory().peakBytes - base;
const webgpu = { ms: webgpuMs, tokensPerSecond: tokens / (webgpuMs / 1000), peakBytes: peak };
console.log(
  `webgpu : ${webgpuMs.toFixed(0).padStart(7)} ms/step  ${webgpu.tokensPerSecond.toFixed(0).padStart(7)} tokens/s  ` +
    `peak ${t.formatBytes(peak)} of activations and gradients above the weights (device.memory().peakBytes)`,
);

const python = '/usr/bin/python3';
const script = fileURLToPath(new URL('../../../tools/bench/llama_layer_step.py', import.meta.url));
const probe = existsSync(python) ? spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }) : null;
let pytorch = null;
if (probe?.status !== 0) {
  console.log(
    `pytorch: missing (${python} cannot import torch: apt-get install python3-torch libopenblas0-pthread)`,
  );
} else {
  const run = spawnSync(
    python,
    [
      script,
      ...Object.entries({ batch, seq, dim, heads, 'kv-heads': kvHeads, ffn, steps }).flatMap(([k, v]) => [
        `--${k}`,
        `${v}`,
      ]),
    ],
    { encoding: 'utf8' },
  );
  if (run.status !== 0) {
    console.log(`pytorch: failed: ${run.stderr.trim().split('\n').pop()}`);
  } else {
    pytorch = JSON.parse(run.stdout.trim().split('\n').pop());
    console.log(
      `pytorch: ${pytorch.ms.toFixed(0).padStart(7)} ms/step  ${pytorch.tokensPerSecond.toFixed(0).padStart(7)} tokens/s  ` +
        `peak RSS ${t.formatBytes(pytorch.peakRssBytes)} (torch ${pytorch.torch}, ${pytorch.threads} thread(s), BLAS ${pytorch.blas})`,
    );
    console.log(
      `ratio  : webgpu / pytorch = ${(webgpu.tokensPerSecond / pytorch.tokensPerSecond).toFixed(3)}`,
    );
  }
}
console.log(JSON.stringify({ name: 'llama-layer-train-step', shape, webgpu, pytorch }));
device.destroy();
