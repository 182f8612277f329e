// Generation benchmark of @webtune/nn: prefill and decode tokens/s for stories260K (the real
// checkpoint) and a random stories15M-shape model, beside the same decode loop in PyTorch on the
// CPU (bench/torch_generation.py, when /usr/bin/python3 or $WEBTUNE_BENCH_PYTHON has torch), in the
// same run, for the fused decode path and the unfused one, with dispatches and submits per token;
// then the load time of a sharded checkpoint.
//   pnpm --filter @webtune/nn bench            (builds this package first)
//   WEBTUNE_BENCH_NEW_TOKENS=64 WEBTUNE_BENCH_PROMPT=64 ... to change the sizes
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { loadModelDirectory, saveModelDirectory } from '@webtune/nn/node';
import { createDevice } from '@webtune/tensors';
import { fullFixturePath } from '@webtune/test-utils/fixtures';

const here = dirname(fileURLToPath(import.meta.url));
const promptTokens = Number(process.env.WEBTUNE_BENCH_PROMPT ?? 128);
const newTokens = Number(process.env.WEBTUNE_BENCH_NEW_TOKENS ?? 128);
const repeats = Number(process.env.WEBTUNE_BENCH_REPEATS ?? 2);
const torchThreads = Number(process.env.WEBTUNE_BENCH_TORCH_THREADS ?? 1);

const device = await createDevice();
console.log(
  `device: ${device.info.vendor} ${device.info.architecture} ${device.info.device} (${device.info.adapterClass})`,
);
console.log(
  `prompt ${promptTokens} tokens, ${newTokens} new tokens, greedy, batch 1, median of ${repeats}\n`,
);

/** Deterministic prompt ids inside the vocabulary, starting with BOS. */
const promptIds = (vocab) => [
  1,
  ...Array.from({ length: promptTokens - 1 }, (_, i) => 3 + ((i * 7919) % (vocab - 3))),
];

/** Median of a list of numbers. */
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** Medians of a list of generation timings, and the device work per decode step. */
function summarise(runs, batch) {
  const steps = runs[0].decodeSteps;
  return {
    fused: runs[0].fused,
    prefill: median(runs.map((t) => (t.promptTokens / t.prefillMs) * 1000)),
    // Tokens of every row per second.
    decode: median(runs.map((t) => ((t.decodeSteps * batch) / t.decodeMs) * 1000)),
    dispatchesPerToken: runs[0].decodeDispatches / steps,
    submitsPerToken: runs[0].decodeSubmits / steps,
    readbacksPerToken: runs[0].decodeReadbacks / steps,
  };
}

/**
 * Prefill and decode tokens/s of both decode paths: the model's own forward (`fusedDecode:
 * false`) and the fused one (generation/fused-decoder.ts), medians over the repeats after a
 * warm-up that compiles every pipeline and fills the buffer pool. The two paths alternate run by
 * run, so a change in the machine's load reaches both alike.
 */
async function measureBoth(model, batch = 1) {
  const ids = promptIds(model.config.vocabSize);
  // Batched rows: the same prompt shifted by one token id per row.
  const prompts = Array.from({ length: batch }, (_, b) =>
    ids.map((id, i) => (i === 0 ? id : 3 + ((id + b) % (model.config.vocabSize - 3)))),
  );
  const runs = { false: [], true: [] };
  for (const fusedDecode of [false, true]) {
    await generateWithTimings(model, null, prompts, { stopTokens: [], fusedDecode, maxNewTokens: 10 });
  }
  for (let r = 0; r < repeats; r++) {
    for (const fusedDecode of [false, true]) {
      const { timings } = await generateWithTimings(model, null, prompts, {
        stopTokens: [],
        fusedDecode,
        maxNewTokens: newTokens,
      });
      runs[fusedDecode].push(timings);
    }
  }
  return { unfused: summarise(runs.false, batch), fusedPath: summarise(runs.true, batch) };
}

const rows = [];
const torchCases = [];
const hfConfigJson = (config) => ({
  hidden_size: config.hiddenSize,
  intermediate_size: config.intermediateSize,
  num_hidden_layers: config.numHiddenLayers,
  num_attention_heads: config.numAttentionHeads,
  num_key_value_heads: config.numKeyValueHeads,
  vocab_size: config.vocabSize,
  max_position_embeddings: config.maxPositionEmbeddings,
  rms_norm_eps: config.rmsNormEps,
  rope_theta: config.ropeTheta,
  tie_word_embeddings: config.tieWordEmbeddings,
});

// stories260K: the real checkpoint.
const storiesDir = fullFixturePath('models/stories260K-hf');
if (existsSync(storiesDir)) {
  const { model } = await loadModelDirectory(device, storiesDir);
  rows.push({ name: 'stories260K', parameters: model.parameterCount(), ...(await measureBoth(model)) });
  rows.push({
    name: 'stories260K, batch 4',
    parameters: model.parameterCount(),
    ...(await measureBoth(model, 4)),
  });
  torchCases.push({
    name: 'stories260K',
    config: hfConfigJson(model.config),
    weights: join(storiesDir, 'model.safetensors'),
    prompt_ids: promptIds(model.config.vocabSize),
    new_tokens: newTokens,
    threads: torchThreads,
  });
  model.dispose();
} else {
  console.log(`(stories260K skipped: ${storiesDir} not found)`);
}

// A random model of stories15M's shape.
const config15M = createModelConfig({
  hiddenSize: 288,
  intermediateSize: 768,
  numHiddenLayers: 6,
  numAttentionHeads: 6,
  numKeyValueHeads: 6,
  vocabSize: 32000,
  maxPositionEmbeddings: 256 + Math.max(0, promptTokens + newTokens - 256),
  rmsNormEps: 1e-5,
  // llama2.c's stories15M shares the classifier with the embedding.
  tieWordEmbeddings: true,
  bosTokenId: 1,
  eosTokenIds: [2],
});
const model15M = initializeModel(new CausalLM(device, config15M), { seed: 0 });
rows.push({
  name: 'stories15M-shape (random)',
  parameters: model15M.parameterCount(),
  ...(await measureBoth(model15M)),
});
torchCases.push({
  name: 'stories15M-shape (random)',
  config: hfConfigJson(config15M),
  weights: null,
  prompt_ids: promptIds(config15M.vocabSize),
  new_tokens: newTokens,
  threads: torchThreads,
});

// PyTorch on the CPU, same shapes, same loop.
let torch = null;
const python = process.env.WEBTUNE_BENCH_PYTHON ?? '/usr/bin/python3';
if (existsSync(python) && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) {
  const run = spawnSync(python, [join(here, 'torch_generation.py')], {
    input: JSON.stringify(torchCases),
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (run.status === 0) torch = JSON.parse(run.stdout.trim().split('\n').at(-1));
  else console.log(`PyTorch baseline failed:\n${run.stderr}`);
} else {
  console.log(
    '(PyTorch baseline skipped: /usr/bin/python3 has no torch; tools/setup/setup.sh with WEBTUNE_SETUP_TORCH=1 installs it)',
  );
}

const format = (value) => (value === undefined ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(1));
const ratio = (value, baseline) => (baseline ? (value / baseline).toFixed(2) : '-');
console.log(
  '| model | params | decode path | dispatches / token | submits / token | read-backs / token | webtune prefill tok/s | webtune decode tok/s | PyTorch prefill tok/s | PyTorch decode tok/s | decode ratio |',
);
console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const report = [];
for (const row of rows) {
  const baseline = torch?.cases.find((c) => c.name === row.name);
  for (const [path, m] of [
    ['unfused', row.unfused],
    ['fused', row.fusedPath],
  ]) {
    console.log(
      `| ${row.name} | ${(row.parameters / 1e6).toFixed(2)}M | ${path}${m.fused ? '' : path === 'fused' ? ' (not supported)' : ''} | ${m.dispatchesPerToken.toFixed(1)} | ${m.submitsPerToken.toFixed(2)} | ${m.readbacksPerToken.toFixed(2)} | ${format(m.prefill)} | ${format(m.decode)} | ${format(baseline?.prefill_tokens_per_s)} | ${format(baseline?.decode_tokens_per_s)} | ${ratio(m.decode, baseline?.decode_tokens_per_s)} |`,
    );
    report.push({ model: row.name, path, ...m, torch: baseline ?? null });
  }
}
if (process.env.WEBTUNE_BENCH_JSON) console.log(`\n${JSON.stringify(report)}`);
if (torch) console.log(`\nPyTorch ${torch.torch}, ${torch.threads} thread(s), BLAS loaded: ${torch.blas}`);

// Load time of a sharded checkpoint: the random 15M model saved in 16 MB shards.
const directory = await mkdtemp(join(tmpdir(), 'webtune-bench-sharded-'));
try {
  const files = await saveModelDirectory(model15M, directory, { maxShardBytes: 16_000_000 });
  const shards = files.filter((f) => f.endsWith('.safetensors'));
  let bytes = 0;
  for (const shard of shards) bytes += (await readFile(join(directory, shard))).length;
  const times = [];
  for (let r = 0; r < 3; r++) {
    const started = performance.now();
    const { model } = await loadModelDirectory(device, directory);
    await device.sync();
    times.push(performance.now() - started);
    model.dispose();
  }
  const median = times.sort((a, b) => a - b)[1];
  console.log(
    `\nsharded load: ${(bytes / 1e6).toFixed(1)} MB in ${shards.length} shards, median ${median.toFixed(0)} ms (${(bytes / 1e6 / (median / 1000)).toFixed(0)} MB/s) over 3 loads`,
  );
} finally {
  await rm(directory, { recursive: true, force: true });
  model15M.dispose();
}
device.destroy();
