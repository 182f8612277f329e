// webtune's host cost at the real Qwen3 structures: prefill (1 x 128), greedy decode and a LoRA
// SFT step (1 x 512, r 8 all-linear, AdamW, clipping) on Dawn's null backend, where every
// pipeline and bind group is validated and encoded but no kernel runs. The wall time is what the
// host spends dispatching, so `ceiling_tokens_per_s` is what webtune could reach if the GPU took
// no time at all, set beside #21's H100 targets. What is trimmed (layers, vocabulary) and why it
// keeps the host cost: bench/host-cost-cases.mjs. Docs: docs/guide/benchmarks.md.
//
//   pnpm --filter @webtune/train build
//   node --expose-gc bench/host-cost.mjs [--sizes=0.6B,1.7B] [--class=discrete|integrated|software]
//     [--cases=prefill,decode,lora-sft] [--layers=2,10] [--step-layers=1,3 (software: 1,2)] [--check-layers=N] [--vocab=8192]
//     [--base=q4_0|f16|f32] [--repeats=9] [--warmup=10] [--new-tokens=64]
//     [--step-tuning=<JSON>] [--backend=null|adapter] [--qk-norm=on|off] [--seq=512]
//
// --class: the adapter class whose kernels and tuning run (default discrete: the H100's).
// --step-tuning: tuning overrides for the LoRA step's device only (default none: the class's own
//   kernels; the rows say which tuning ran).
// --qk-norm=off: the structure without Qwen3's q/k norms (default on). On the null backend, which
//   holds WebGPU's default 8 storage buffers per stage, the kernels that fuse the norms into
//   decode's attention and the prompt's append read both norm weights from one joined buffer
//   (two buffer copies per such dispatch: 2 more dispatches per layer in the prefill); a device
//   with 9 or more binds them apart.
// --seq: the step's sequence length (default 512; it changes a few dispatches per layer).
// --check-layers=N: also measures the prefill and decode at N layers directly and puts the
//   figures beside the extrapolated ones (`checked_at`).
// --backend=adapter: the machine's own adapter instead of the null backend (then the figures
//   include the GPU's time; for comparison only).
//
// stdout: one JSON row per case (the benchmark row format: case, unit, webtune, better, ...);
// progress and the load average go to stderr.
import * as nn from '@webtune/nn';
import * as peft from '@webtune/peft';
import { createDevice } from '@webtune/tensors';
import * as train from '@webtune/train';
import { QWEN3_LAYERS, runHostCost } from './host-cost-cases.mjs';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const fail = (message) => {
  console.error(`host-cost: ${message}`);
  process.exit(2);
};
const sizes = (option('sizes') ?? '0.6B,1.7B').split(',');
for (const size of sizes) if (!['0.6B', '1.7B'].includes(size)) fail(`unknown size ${size} (0.6B, 1.7B)`);
const adapterClass = option('class') ?? 'discrete';
if (!['discrete', 'integrated', 'software'].includes(adapterClass)) fail(`unknown --class=${adapterClass}`);
const cases = (option('cases') ?? 'prefill,decode,lora-sft').split(',');
for (const name of cases) if (!['prefill', 'decode', 'lora-sft'].includes(name)) fail(`unknown case ${name}`);
const layerOption = (name, fallback) => {
  const counts = (option(name) ?? fallback).split(',').map(Number);
  if (counts.length !== 2 || !(counts[0] < counts[1]) || !(counts[0] >= 1) || !Number.isInteger(counts[1]))
    fail(`--${name} takes two increasing layer counts, e.g. ${fallback}`);
  return counts;
};
// Generation at 2 and 10 layers (1.7B: 2 and 6, its weights fill the null backend's 512 MiB
// beyond); the step at 1 and 3 (at 1.7B's widths its activations at 1 x 512 fill it at 2 layers:
// there its per-layer cost is the 0.6B step's).
const layerCounts = option('layers') ? layerOption('layers', '2,10') : { '0.6B': [2, 10], '1.7B': [2, 6] };
// The software class's step holds more device memory per layer: 1 and 2 layers there.
const stepLayerCounts = layerOption('step-layers', adapterClass === 'software' ? '1,2' : '1,3');
const checkLayers = option('check-layers') ? Number(option('check-layers')) : null;
const vocab = Number(option('vocab') ?? 8192);
const baseFormat = option('base') ?? 'q4_0';
const backend = option('backend') ?? 'null';
const qkNorm = (option('qk-norm') ?? 'on') !== 'off';
const stepTuning = JSON.parse(option('step-tuning') ?? '{}');
const measure = {
  vocab,
  baseFormat,
  repeats: Number(option('repeats') ?? 9),
  // V8 optimises the op layer over the first few dozen calls: fewer warm-ups read 2-3x high.
  warmup: Number(option('warmup') ?? 10),
  prompt: 128,
  newTokens: Number(option('new-tokens') ?? 64),
  seq: Number(option('seq') ?? 512),
  qkNorm,
};

const rows = await runHostCost({
  createDevice,
  libs: { nn, peft, train },
  sizes,
  adapterClass,
  cases,
  layerCounts,
  stepLayerCounts,
  checkLayers,
  backend,
  stepTuning,
  measure,
  log: (line) => console.error(line),
});
for (const row of rows) console.log(JSON.stringify(row));
console.error(
  `host-cost: ${QWEN3_LAYERS}-layer figures extrapolated (each row's \`structure\` says from which counts)`,
);
