// LoRA SFT throughput and memory: the webtune trainer on this machine's WebGPU adapter beside the
// same step in PyTorch with OpenBLAS on the CPU (bench/lora_sft_torch.py), in one run.
//
//   pnpm --filter @webtune/train bench            (builds, then runs)
//   WEBTUNE_BENCH_STEPS=5 node --expose-gc bench/lora-sft.mjs
//   webtune bench train --json                    (the CLI: WEBTUNE_BENCH_JSON=1, --steps=N)
//
// Options: --steps=N (timed steps, default 3; or WEBTUNE_BENCH_STEPS), --only=<regexp> (the shapes
// whose name matches), --json (or WEBTUNE_BENCH_JSON=1): print only one JSON row per case on
// stdout, {name, model, shape, tokens_per_s, peak_bytes, torch_tokens_per_s?}, where a case is a
// shape with or without gradient checkpointing (torch_tokens_per_s: the PyTorch step beside the
// plain case, absent when PyTorch did not run); other lines then go to stderr. Without --json: a
// table.
//
// Shapes: stories260K (its real weights when the fixture is present) and a stories15M-shaped model
// (dim 288, 6 layers, 6 heads, vocab 32000; random weights: only the shape matters for speed).
// Both sides run the same step: LoRA r 8 / alpha 16 on every linear layer but the head, base
// frozen, forward + backward + clipping + AdamW, all tokens trained, seq 256. Peak memory: device
// bytes held by tensors above what the model held before the run (webtune), resident memory
// above what importing torch took (PyTorch).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { loadModelDirectory } from '@webtune/nn/node';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice, formatBytes } from '@webtune/tensors';
import { fullFixturePath } from '@webtune/test-utils/fixtures';
import { supervisedTask, train, trainablePeftModel } from '@webtune/train';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const jsonOnly = args.includes('--json') || process.env.WEBTUNE_BENCH_JSON === '1';
const steps = Number(option('steps') ?? process.env.WEBTUNE_BENCH_STEPS ?? 3);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(`lora-sft bench: --steps must be a positive integer, got ${option('steps')}`);
  process.exit(2);
}
const only = option('only') ? new RegExp(option('only')) : null;
const warmup = 1;
// The venv tools/setup/setup.sh makes with WEBTUNE_SETUP_TORCH=1, else the system's Python.
const venvPython = join(here, '..', '..', '..', '.venv', 'bin', 'python');
const python = process.env.WEBTUNE_PYTHON ?? (existsSync(venvPython) ? venvPython : '/usr/bin/python3');
// With --json, stdout carries the JSON rows only.
const info = jsonOnly ? console.error : console.log;

const SHAPES = [
  {
    name: 'stories260K',
    config: {
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 5,
      numAttentionHeads: 8,
      numKeyValueHeads: 4,
      vocabSize: 512,
      tieWordEmbeddings: true,
    },
    directory: fullFixturePath('models/stories260K-hf'),
    batch: 8,
    seq: 256,
    chunkRows: undefined,
  },
  {
    name: 'stories15M shape',
    config: {
      hiddenSize: 288,
      intermediateSize: 768,
      numHiddenLayers: 6,
      numAttentionHeads: 6,
      numKeyValueHeads: 6,
      vocabSize: 32000,
      tieWordEmbeddings: true,
    },
    directory: null,
    batch: 4,
    seq: 256,
    // The classifier's logits (1024 x 32000 f32, 131 MB) are computed and differentiated 256 rows at a time.
    chunkRows: 256,
  },
];

const shapes = SHAPES.filter((shape) => !only || only.test(shape.name));
if (shapes.length === 0) {
  console.error(
    `lora-sft bench: no shape matches --only=${option('only')} (${SHAPES.map((s) => s.name).join(', ')})`,
  );
  process.exit(2);
}
const device = await createDevice();
info(
  `adapter: ${device.info.vendor} ${device.info.architecture} (${device.info.adapterClass}); steps timed: ${steps}`,
);
const results = [];
for (const shape of shapes) {
  const config = createModelConfig(shape.config);
  let model;
  if (shape.directory && existsSync(shape.directory)) {
    model = (await loadModelDirectory(device, shape.directory)).model;
  } else {
    model = initializeModel(new CausalLM(device, config), { seed: 0 });
  }
  const peft = await getPeftModel(model, loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }), {
    seed: 0,
  });
  const rows = Array.from({ length: shape.batch }, (_, r) => {
    const ids = Array.from({ length: shape.seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
    return { inputIds: ids, labels: ids };
  });
  const runs = {};
  for (const gradientCheckpointing of [false, true]) {
    globalThis.gc?.();
    await device.sync();
    device.resetPeak();
    const before = device.memory().liveBytes;
    const times = [];
    await train({
      model: trainablePeftModel(peft),
      task: supervisedTask({ stage: 'pt', chunkRows: shape.chunkRows }),
      train: rows,
      args: {
        perDeviceTrainBatchSize: shape.batch,
        maxSteps: warmup + steps,
        learningRate: 1e-3,
        lrSchedulerType: 'constant',
        shuffle: false,
        gradientCheckpointing,
      },
      onEvent: (event) => {
        if (event.type === 'step-end' && event.step > warmup) times.push(event.stepMs);
      },
    });
    times.sort((a, b) => a - b);
    runs[gradientCheckpointing ? 'checkpointed' : 'plain'] = {
      stepMs: times[Math.floor(times.length / 2)],
      peak: device.memory().peakBytes - before,
    };
  }
  const tokens = shape.batch * shape.seq;
  const torchConfig = {
    hidden: config.hiddenSize,
    intermediate: config.intermediateSize,
    layers: config.numHiddenLayers,
    heads: config.numAttentionHeads,
    kv_heads: config.numKeyValueHeads,
    head_dim: config.headDim,
    vocab: config.vocabSize,
    seq: shape.seq,
    batch: shape.batch,
    r: 8,
    alpha: 16,
    warmup,
    steps,
    // Every core, as a user's torch would use (it used to be 1 thread: unfair to PyTorch).
    threads: cpus().length,
  };
  let torch = null;
  try {
    const output = execFileSync(python, [join(here, 'lora_sft_torch.py'), JSON.stringify(torchConfig)], {
      encoding: 'utf8',
    });
    torch = JSON.parse(output.trim().split('\n').pop());
  } catch (error) {
    console.warn(`PyTorch baseline skipped: ${error.message.split('\n')[0]}`);
  }
  const shapeRow = {
    batch: shape.batch,
    seq: shape.seq,
    hidden: config.hiddenSize,
    layers: config.numHiddenLayers,
    vocab: config.vocabSize,
    lora_r: 8,
  };
  for (const [variant, run] of Object.entries(runs)) {
    const row = {
      name: variant === 'plain' ? 'lora-sft' : 'lora-sft-grad-checkpointing',
      model: shape.name,
      shape: shapeRow,
      tokens_per_s: Math.round(tokens / (run.stepMs / 1000)),
      peak_bytes: run.peak,
      ...(torch && variant === 'plain'
        ? {
            torch_tokens_per_s: Math.round(torch.tokens_per_second),
            torch_peak_bytes: torch.peak_rss_bytes - torch.baseline_rss_bytes,
          }
        : {}),
    };
    if (jsonOnly) console.log(JSON.stringify(row));
  }
  results.push({
    model: shape.name,
    tokens: `${shape.batch} x ${shape.seq}`,
    'webtune tokens/s': Math.round(tokens / (runs.plain.stepMs / 1000)),
    'webtune peak': formatBytes(runs.plain.peak),
    'with grad. checkpointing tokens/s': Math.round(tokens / (runs.checkpointed.stepMs / 1000)),
    'with grad. checkpointing peak': formatBytes(runs.checkpointed.peak),
    'torch tokens/s': torch ? Math.round(torch.tokens_per_second) : 'n/a',
    'torch step ms': torch ? Math.round(torch.step_seconds * 1000) : 'n/a',
    'torch peak RSS': torch ? formatBytes(torch.peak_rss_bytes - torch.baseline_rss_bytes) : 'n/a',
  });
  if (torch) info(`${shape.name}: PyTorch ${torch.torch}, ${torch.threads} thread(s), BLAS ${torch.blas}`);
  model.dispose();
}
if (!jsonOnly) console.table(results);
device.destroy();
