// The one-command GPU benchmark's runner: webtune on the machine's WebGPU adapter (Dawn over
// Vulkan in Node) beside Transformers + PEFT (CUDA bf16 when torch sees a GPU, else the CPU in
// f32) on the same shapes, in the same run. Prints one JSON report on stdout; progress on stderr.
//
//   ./run.sh                      (inside the archive bundle.mjs writes: the real sizes)
//   ./run.sh --scale=tiny         (minute-sized shapes: proves the whole path on any machine)
//   --python=/path/to/python      (the baseline's Python; default $WEBTUNE_BENCH_PYTHON, python3)
//   --only=<regexp>               (cases whose name matches)
//   --no-subgroup-matrix          (Dawn without allow_unsafe_apis: the subgroup-matrix feature,
//                                  experimental in Dawn, stays hidden and its kernel unused)
//   --host-only                   (only the report's `host` section: no GPU case, no baseline)
//   --no-host                     (no `host` section)
//   --limits=default              (the device asks for no limits: WebGPU's defaults, as in many
//                                  browsers, and the kernel variants that fit them; default:
//                                  every limit the adapter offers)
//
// The `host` section is webtune's host cost on this machine's CPU: the prefill, decode and LoRA
// step at the Qwen3-0.6B/1.7B structures on Dawn's null backend (every pipeline validated and
// encoded, no kernel run) with this adapter's class, so the GPU rows can be read against the
// floor the host puts under them (packages/train/bench/host-cost-cases.mjs says what it trims).
//
// Dawn lists chromium-experimental-subgroup-matrix (tensor cores through Vulkan cooperative
// matrices) only with allow_unsafe_apis, so the runner asks for it by default. Where the adapter
// then has the feature, createDevice self-checks the subgroup-matrix kernel against float64 before
// any case runs; the report's `webtune.subgroup_matrix` says what the adapter offered and what the
// check found, and each matmul row's `selected`/`selection_reason` says whether it was used.
//
// Cases: matmul f32 and f16 at 4096^3; LoRA SFT steps on Qwen3-0.6B and 1.7B shapes with an f16
// and a 4-bit (Q4_0) frozen base (random weights made on the fly); prefill and greedy decode on
// the 1.7B shape; attention forward + backward over one long sequence with the 1.7B shape's
// heads. Each row names the matmul and attention kernel variants the case dispatched (`kernels`,
// counts per variant) and the matmul rows the variant the selection picks and why. Rows follow the benchmark row format {case, unit, webtune, baseline, ratio, ...}.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CausalLM, createModelConfig, generateWithTimings, loadWeights } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import {
  attention,
  attentionBackward,
  countKernelVariants,
  createDevice,
  matmul,
  matmulCapabilities,
  parseSubgroupMatrixConfigs,
  randn,
  SUBGROUP_MATRIX_FEATURE,
  selectMatmulVariant,
  subgroupMatrixCheckOf,
} from '@webtune/tensors';
import { supervisedTask, train, trainablePeftModel } from '@webtune/train';
import { runHostCost } from '../../packages/train/bench/host-cost-cases.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const scale = option('scale') ?? 'full';
const only = new RegExp(option('only') ?? '.');
const log = (...parts) => console.error(...parts);

const QWEN3 = {
  '0.6B': { hiddenSize: 1024, intermediateSize: 3072, numHiddenLayers: 28, numAttentionHeads: 16 },
  '1.7B': { hiddenSize: 2048, intermediateSize: 6144, numHiddenLayers: 28, numAttentionHeads: 16 },
};
const qwen3 = (size) => ({
  ...QWEN3[size],
  architecture: 'Qwen3ForCausalLM',
  numKeyValueHeads: 8,
  headDim: 128,
  vocabSize: 151936,
  tieWordEmbeddings: true,
  qkNorm: true,
  maxPositionEmbeddings: 4096,
});
/** A Qwen3-shaped model small enough for lavapipe and one CPU thread (the proof scale). */
const tinyQwen3 = (layers) => ({
  architecture: 'Qwen3ForCausalLM',
  hiddenSize: 128,
  intermediateSize: 384,
  numHiddenLayers: layers,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 32,
  vocabSize: 1024,
  tieWordEmbeddings: true,
  qkNorm: true,
  maxPositionEmbeddings: 512,
});
const SIZES =
  scale === 'tiny'
    ? {
        matmul: 256,
        attentionSeq: 512,
        sft: [
          { name: 'Qwen3-0.6B', label: 'tiny Qwen3 (2 layers)', config: tinyQwen3(2) },
          { name: 'Qwen3-1.7B', label: 'tiny Qwen3 (3 layers)', config: tinyQwen3(3) },
        ],
        generation: { name: 'Qwen3-1.7B', label: 'tiny Qwen3 (3 layers)', config: tinyQwen3(3) },
        batch: 1,
        seq: 64,
        steps: 2,
        prompt: 32,
        newTokens: 16,
      }
    : {
        matmul: 4096,
        attentionSeq: 4096,
        sft: ['0.6B', '1.7B'].map((size) => ({
          name: `Qwen3-${size}`,
          label: `Qwen3-${size}`,
          config: qwen3(size),
        })),
        generation: { name: 'Qwen3-1.7B', label: 'Qwen3-1.7B', config: qwen3('1.7B') },
        batch: 1,
        seq: 512,
        steps: 3,
        prompt: 128,
        newTokens: 128,
      };

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** Random weights for every slot, one tensor at a time (std ~0.02, norms 1), as a checkpoint streams. */
async function* randomEntries(model, seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  for (const [name, slot] of model.namedSlots()) {
    if (model.config.tieWordEmbeddings && name === 'lm_head.weight') continue;
    const size = slot.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (name.endsWith('norm.weight')) values.fill(1);
    else for (let i = 0; i < size; i++) values[i] = (next() - 0.5) * 0.07;
    yield { name, dtype: 'F32', shape: [...slot.shape], data: new Uint8Array(values.buffer) };
  }
}

// The child process of the report's `host` section: one JSON line on stdout, then exit.
if (option('host-worker')) {
  console.log(JSON.stringify({ host: await hostSection(option('host-worker')) }));
  process.exit(0);
}

const subgroupMatrixWanted = !args.includes('--no-subgroup-matrix');
const device = await createDevice({
  dawnOptions: subgroupMatrixWanted ? ['enable-dawn-features=allow_unsafe_apis'] : [],
  limits: option('limits') === 'default' ? 'default' : 'adapter',
});
log(
  `limits: ${option('limits') === 'default' ? "WebGPU's defaults" : "the adapter's"} (${device.info.limits.maxStorageBuffersPerShaderStage} storage buffers per stage)`,
);
/** What the adapter offered for subgroup matrices and what the device's self-check found. */
function subgroupMatrixReport() {
  const info = device.gpu.adapterInfo ?? {};
  const { configs, ignored } = parseSubgroupMatrixConfigs(info.subgroupMatrixConfigs);
  return {
    requested: subgroupMatrixWanted ? 'allow_unsafe_apis' : 'no (--no-subgroup-matrix)',
    feature: device.gpu.features.has(SUBGROUP_MATRIX_FEATURE),
    configs,
    ...(ignored.length ? { ignored } : {}),
    self_check: subgroupMatrixCheckOf(device),
  };
}
log(`subgroup matrices: ${JSON.stringify(subgroupMatrixReport())}`);
const adapter = `${device.info.vendor} ${device.info.architecture} ${device.info.device} (${device.info.adapterClass})`;
log(`webtune on ${adapter}; scale ${scale}`);
const webtune = [];

async function matmulCase(dtype) {
  const n = SIZES.matmul;
  const name = `matmul ${dtype} ${n}^3`;
  if (!only.test(name)) return;
  if (dtype === 'f16' && !device.hasF16) {
    webtune.push({ case: name, unit: 'GFLOP/s', webtune: null, note: 'the adapter lacks shader-f16' });
    return;
  }
  const times = [];
  const stopCounting = countKernelVariants(device);
  await device.scope(async () => {
    const a = randn(device, [n, n], { seed: 1, dtype });
    const b = randn(device, [n, n], { seed: 2, dtype });
    for (let r = 0; r < 4; r++) {
      await device.sync();
      const started = performance.now();
      matmul(a, b).dispose();
      await device.sync();
      if (r > 0) times.push(performance.now() - started);
    }
  });
  const selection = selectMatmulVariant(matmulCapabilities(device), {
    dtype,
    rows: n,
    cols: n,
    folded: true,
    transposeA: false,
    chunked: false,
  });
  webtune.push({
    case: name,
    unit: 'GFLOP/s',
    webtune: (2 * n ** 3) / (median(times) / 1000) / 1e9,
    n,
    selected: selection.variant,
    selection_reason: selection.reason,
    kernels: stopCounting(),
    subgroup_matrix_self_check: subgroupMatrixCheckOf(device)[dtype] ?? null,
  });
  log(`${name}: ${webtune.at(-1).webtune.toFixed(1)} GFLOP/s`);
}

async function sftCase(shape, baseFormat) {
  const name = `lora-sft ${shape.name} ${baseFormat === 'q4_0' ? '4-bit' : baseFormat} base`;
  if (!only.test(name)) return;
  const config = createModelConfig(shape.config);
  const model = new CausalLM(device, config);
  try {
    await loadWeights(model, randomEntries(model, 7), { baseFormat });
    const peft = await getPeftModel(
      model,
      loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }),
      {
        seed: 0,
      },
    );
    const { batch, seq, steps } = SIZES;
    const data = Array.from({ length: batch * (1 + steps) }, (_, r) => {
      const ids = Array.from({ length: seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
      return { inputIds: ids, labels: ids };
    });
    const times = [];
    await train({
      model: trainablePeftModel(peft),
      task: supervisedTask({ stage: 'pt' }),
      train: data,
      args: { perDeviceTrainBatchSize: batch, maxSteps: 1 + steps, learningRate: 1e-4, shuffle: false },
      onEvent: (event) => {
        if (event.type === 'step-end') times.push(event.stepMs);
      },
    });
    const value = (batch * seq) / (median(times.slice(1)) / 1000);
    webtune.push({
      case: name,
      unit: 'tokens/s',
      webtune: value,
      shape: shape.label,
      batch,
      seq,
      lora_r: 8,
      statistic: `median of ${steps} steps after 1 warm-up`,
    });
    log(`${name} (${shape.label}): ${value.toFixed(1)} tokens/s`);
  } finally {
    model.dispose();
  }
}

async function generationCases() {
  const shape = SIZES.generation;
  if (!only.test(`prefill ${shape.name}`) && !only.test(`decode ${shape.name}`)) return;
  const config = createModelConfig(shape.config);
  const model = new CausalLM(device, config);
  try {
    await loadWeights(model, randomEntries(model, 11), { baseFormat: 'f32' });
    const prompt = Array.from({ length: SIZES.prompt }, (_, i) => 1 + ((i * 7919) % (config.vocabSize - 1)));
    const options = { stopTokens: [], maxNewTokens: SIZES.newTokens };
    await generateWithTimings(model, null, [prompt], { ...options, maxNewTokens: 4 });
    const runs = [];
    for (let r = 0; r < 3; r++)
      runs.push((await generateWithTimings(model, null, [prompt], options)).timings);
    const prefill = median(runs.map((t) => (t.promptTokens / t.prefillMs) * 1000));
    const decode = median(runs.map((t) => (t.decodeSteps / t.decodeMs) * 1000));
    const per = (field) => runs[0][field] / runs[0].decodeSteps;
    const common = { shape: shape.label, prompt: SIZES.prompt, new_tokens: SIZES.newTokens, weights: 'f32' };
    webtune.push({ case: `prefill ${shape.name}`, unit: 'tokens/s', webtune: prefill, ...common });
    webtune.push({
      case: `decode ${shape.name}`,
      unit: 'tokens/s',
      webtune: decode,
      ...common,
      fused: runs[0].fused,
      dispatches_per_token: per('decodeDispatches'),
      submits_per_token: per('decodeSubmits'),
    });
    log(`prefill ${prefill.toFixed(1)} tokens/s, decode ${decode.toFixed(1)} tokens/s (${shape.label})`);
  } finally {
    model.dispose();
  }
}

/** Runs one case and puts the kernel variants it dispatched (counts) on the rows it pushed. */
async function withKernels(run) {
  const first = webtune.length;
  const stop = countKernelVariants(device);
  try {
    await run();
  } finally {
    const kernels = stop();
    for (const row of webtune.slice(first)) row.kernels = kernels;
  }
}

/** Causal attention forward + backward over one sequence with the 1.7B shape's heads (GQA 16/8, head dim 128). */
async function attentionCase() {
  const seq = SIZES.attentionSeq;
  const name = `attention fwd+bwd ${seq} tokens`;
  if (!only.test(name)) return;
  const config = SIZES.generation.config;
  const [heads, kvHeads, headDim] = [config.numAttentionHeads, config.numKeyValueHeads, config.headDim];
  const dtype = device.hasF16 ? 'f16' : 'f32';
  const times = [];
  let peak = 0;
  await device.scope(async () => {
    const q = randn(device, [1, seq, heads, headDim], { seed: 1, dtype });
    const k = randn(device, [1, seq, kvHeads, headDim], { seed: 2, dtype });
    const v = randn(device, [1, seq, kvHeads, headDim], { seed: 3, dtype });
    const grad = randn(device, [1, seq, heads, headDim], { seed: 4, dtype });
    const live = device.memory().liveBytes;
    device.resetPeak();
    for (let r = 0; r < 4; r++) {
      await device.sync();
      const started = performance.now();
      device.scope(() => {
        const { output, logsumexp } = attention(q, k, v, { causal: true });
        attentionBackward(q, k, v, output, logsumexp, grad, { causal: true });
      });
      await device.sync();
      if (r > 0) times.push(performance.now() - started);
    }
    peak = device.memory().peakBytes - live;
  });
  webtune.push({
    case: name,
    unit: 'tokens/s',
    webtune: seq / (median(times) / 1000),
    dtype,
    heads,
    kv_heads: kvHeads,
    head_dim: headDim,
    // Beyond q, k, v and the gradient: output, logsumexp, dq, dk, dv and the backward's D.
    device_bytes_above_inputs: peak,
    score_matrix_bytes: heads * seq * seq * 4,
  });
  log(
    `${name}: ${webtune.at(-1).webtune.toFixed(1)} tokens/s, ${(peak / 2 ** 20).toFixed(1)} MiB above inputs`,
  );
}

const hostOnly = args.includes('--host-only');
if (!hostOnly) {
  await withKernels(() => matmulCase('f32'));
  await withKernels(() => matmulCase('f16'));
  for (const shape of SIZES.sft) {
    for (const format of ['f16', 'q4_0']) await withKernels(() => sftCase(shape, format));
  }
  await withKernels(generationCases);
  await withKernels(attentionCase);
}
const adapterClass = device.info.adapterClass;
device.destroy();

/**
 * The report's `host` section, measured in a child process (`--host-worker`): Dawn prints a
 * failed pipeline's validation messages on stdout, which must hold the report alone, and the
 * null backend's read-backs are zeroed for the whole process while it runs.
 */
function hostSectionInChild() {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', process.argv[1], `--host-worker=${adapterClass}`, `--scale=${scale}`],
    { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const last = (child.stdout ?? '')
    .trim()
    .split('\n')
    .findLast((line) => line.startsWith('{"host":'));
  if (child.status === 0 && last) return JSON.parse(last).host;
  return { rows: [], error: `the host-cost process exited with ${child.status ?? child.error?.message}` };
}

/**
 * The host cost of this adapter class on the null backend. Qwen3's q/k norms on first; where a
 * kernel that fuses them does not fit the null backend's default limits, once more without them,
 * saying so.
 */
async function hostSection(adapterClass) {
  const tiny = scale === 'tiny';
  const run = (qkNorm) =>
    runHostCost({
      createDevice,
      libs: {
        nn: { CausalLM, createModelConfig, generateWithTimings, loadWeights },
        peft: { getPeftModel, loraConfig },
        train: { supervisedTask, train, trainablePeftModel },
      },
      sizes: tiny ? ['0.6B'] : ['0.6B', '1.7B'],
      adapterClass,
      cases: ['prefill', 'decode', 'lora-sft'],
      layerCounts: tiny ? [1, 2] : { '0.6B': [2, 10], '1.7B': [2, 6] },
      stepLayerCounts: [1, tiny ? 2 : 3],
      // The class's own kernels: they fit the null backend's default limits (kernel-selection.md).
      stepTuning: {},
      measure: {
        vocab: 8192,
        baseFormat: 'q4_0',
        repeats: tiny ? 2 : 9,
        warmup: tiny ? 1 : 10,
        prompt: 128,
        newTokens: tiny ? 8 : 64,
        seq: 512,
        qkNorm,
      },
      log,
    });
  try {
    return { rows: await run(true) };
  } catch (error) {
    log(`host cost with q/k norms failed (${error.message.split('\n')[0]}); once more without them`);
    try {
      return {
        rows: await run(false),
        note: `without Qwen3's q/k norms: with them, ${error.message.split('\n')[0]}`,
      };
    } catch (again) {
      return { rows: [], error: again.message.split('\n')[0] };
    }
  }
}
const host = args.includes('--no-host') ? null : hostSectionInChild();
if (hostOnly) {
  console.log(JSON.stringify({ scale, webtune: { adapter, node: process.version }, host }, null, 2));
  process.exit(0);
}

// The baseline: the same cases in Transformers + PEFT, in one Python process.
const python =
  option('python') ?? process.env.WEBTUNE_PYTHON ?? process.env.WEBTUNE_BENCH_PYTHON ?? 'python3';
const baselineInput = {
  matmul: SIZES.matmul,
  attention: {
    seq: SIZES.attentionSeq,
    heads: SIZES.generation.config.numAttentionHeads,
    kv_heads: SIZES.generation.config.numKeyValueHeads,
    head_dim: SIZES.generation.config.headDim,
  },
  sft: SIZES.sft.map((s) => ({ name: s.name, config: s.config })),
  generation: { name: SIZES.generation.name, config: SIZES.generation.config },
  batch: SIZES.batch,
  seq: SIZES.seq,
  steps: SIZES.steps,
  prompt: SIZES.prompt,
  new_tokens: SIZES.newTokens,
  cases: webtune.map((row) => row.case),
};
let baseline = { error: `no Python with torch, transformers and peft at ${python}` };
const script = join(here, 'torch_baseline.py');
if (existsSync(script)) {
  log(`baseline: ${python} ${script}`);
  const run = spawnSync(python, [script], {
    input: JSON.stringify(baselineInput),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  if (run.status === 0) baseline = JSON.parse(run.stdout.trim().split('\n').at(-1));
  else baseline = { error: `${python} exited with ${run.status ?? run.error?.message}` };
}

const rows = webtune.map((row) => {
  const value = baseline.results?.[row.case] ?? null;
  const { statistic, ...fields } = row;
  return {
    ...fields,
    webtune: row.webtune == null ? null : Number(row.webtune.toPrecision(4)),
    baseline: value == null ? null : Number(value.toPrecision(4)),
    ratio: row.webtune != null && value ? Number((row.webtune / value).toFixed(3)) : null,
    // The row format of the CPU benchmark harness (docs/guide/benchmarks.md).
    better: 'higher',
    statistic: statistic ?? 'median of 3 after 1 warm-up',
    webtune_adapter: adapter,
    ...(baseline.versions
      ? {
          baseline_name: `transformers ${baseline.versions.transformers} + peft ${baseline.versions.peft}, torch ${baseline.versions.torch}, ${baseline.device}, ${baseline.dtype}`,
        }
      : {}),
    ...(baseline.notes?.[row.case] ? { baseline_note: baseline.notes[row.case] } : {}),
    ...(baseline.error ? { baseline_absent: baseline.error } : {}),
  };
});
console.log(
  JSON.stringify(
    {
      scale,
      webtune: {
        adapter,
        features: device.info.features,
        node: process.version,
        subgroup_matrix: subgroupMatrixReport(),
      },
      baseline: {
        device: baseline.device ?? null,
        dtype: baseline.dtype ?? null,
        versions: baseline.versions ?? null,
        ...(baseline.error ? { error: baseline.error } : {}),
      },
      rows,
      ...(host ? { host } : {}),
    },
    null,
    2,
  ),
);
