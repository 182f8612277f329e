// webtune against what a user would otherwise run: Transformers + PEFT on torch, on the CPU with
// every core (bench/transformers_baseline.py), same shapes, batch, sequence length, LoRA targets
// and dtype (f32). Docs: docs/guide/benchmarks.md.
//
//   pnpm bench                                   (every package's bench; this is @webtune/train's)
//   pnpm --filter @webtune/train bench           (builds, then runs this)
//   node --expose-gc bench/versus-transformers.mjs [--only=<regexp>] [--repeats=N] [--warmup=N]
//     [--generate-options=<JSON>]
//
// --generate-options: extra options of webtune's generate for the prefill and decode cases, to
// compare paths in one build, e.g. '{"tiledPrefill":false}' (the prompt through the forward).
//
// Cases: a LoRA SFT step (r 8, alpha 16, all-linear, every token trained, AdamW, clipping),
// prefill (1 x prompt) and greedy decode (new tokens, KV cache) on the stories260K and stories15M
// shapes (random weights: speed depends on the shape only), plus the peak memory of each.
// Every case runs in its own process on each side, so the resident-memory peaks are each case's
// own. Timings are medians of N runs after warm-up, the same N on both sides.
//
// stdout: one JSON row per case (nothing else), the format other tools rely on:
//   {"case", "unit", "webtune", "baseline", "ratio", "better", ...context}
// ratio = webtune / baseline (null when the baseline is absent); `better` says whether higher or
// lower is better for that unit. Progress and notes go to stderr.
//
// The baseline's Python: WEBTUNE_PYTHON, else <repo>/.venv/bin/python (made by
// `WEBTUNE_SETUP_TORCH=1 tools/setup/setup.sh`), else /usr/bin/python3; it needs torch,
// transformers and peft. Without them every row still prints, with baseline and ratio null and
// `baseline_absent` saying why.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STEP_SHAPES } from './step-shapes.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..', '..');
const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const PROMPT = Number(process.env.WEBTUNE_BENCH_PROMPT ?? 128);
const NEW_TOKENS = Number(process.env.WEBTUNE_BENCH_NEW_TOKENS ?? 128);
const LORA = { r: 8, alpha: 16 };

if (option('worker')) {
  await runWorker(JSON.parse(option('worker')));
} else {
  await runHarness();
}

/** One webtune case in this process: prints one JSON line. */
async function runWorker(spec) {
  const { CausalLM, createModelConfig, generateWithTimings, initializeModel } = await import('@webtune/nn');
  const { getPeftModel, loraConfig } = await import('@webtune/peft');
  const { createDevice } = await import('@webtune/tensors');
  const { supervisedTask, train, trainablePeftModel } = await import('@webtune/train');
  // --tuning=<JSON>: Tuning overrides (to compare kernel paths in one build).
  const device = await createDevice(spec.tuning ? { tuning: spec.tuning } : {});
  const shape = STEP_SHAPES[spec.shape];
  const baselineRss = process.memoryUsage().rss;
  device.resetPeak();
  const config = createModelConfig({
    ...shape.config,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 512,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  const times = [];
  let tokens;
  if (spec.case === 'lora-sft') {
    const peft = await getPeftModel(
      model,
      loraConfig({ r: LORA.r, lora_alpha: LORA.alpha, target_modules: 'all-linear' }),
      {
        seed: 0,
      },
    );
    const rows = Array.from({ length: shape.batch }, (_, r) => {
      const ids = Array.from({ length: shape.seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
      return { inputIds: ids, labels: ids };
    });
    tokens = shape.batch * shape.seq;
    await train({
      model: trainablePeftModel(peft),
      task: supervisedTask({ stage: 'pt', chunkRows: shape.chunkRows }),
      train: rows,
      args: {
        perDeviceTrainBatchSize: shape.batch,
        maxSteps: spec.warmup + spec.repeats,
        learningRate: 1e-3,
        lrSchedulerType: 'constant',
        maxGradNorm: 1,
        shuffle: false,
        gradientCheckpointing: false,
      },
      onEvent: (event) => {
        if (event.type === 'step-end' && event.step > spec.warmup) times.push(event.stepMs / 1000);
      },
    });
  } else {
    const ids = [
      1,
      ...Array.from({ length: PROMPT - 1 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3))),
    ];
    for (let run = 0; run < spec.warmup + spec.repeats; run++) {
      const { timings } = await generateWithTimings(model, null, [ids], {
        ...spec.generateOptions,
        maxNewTokens: spec.case === 'prefill' ? 1 : NEW_TOKENS,
        stopTokens: [],
      });
      if (run < spec.warmup) continue;
      if (spec.case === 'prefill') {
        tokens = timings.promptTokens;
        times.push(timings.prefillMs / 1000);
      } else {
        tokens = timings.decodeSteps;
        times.push(timings.decodeMs / 1000);
      }
    }
  }
  await device.sync();
  const seconds = median(times);
  console.log(
    JSON.stringify({
      seconds,
      runs: times,
      tokens,
      tokens_per_second: tokens / seconds,
      peak_rss_above_baseline_bytes: process.resourceUsage().maxRSS * 1024 - baselineRss,
      device_peak_bytes: device.memory().peakBytes,
      adapter: `${device.info.vendor} ${device.info.architecture} ${device.info.device ?? ''}`.trim(),
      adapter_class: device.info.adapterClass,
    }),
  );
  model.dispose();
  device.destroy();
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The baseline's Python and why there is none. */
function findPython() {
  // An explicit WEBTUNE_PYTHON is the only candidate (a test or a user picking "none" gets none).
  const candidates = process.env.WEBTUNE_PYTHON
    ? [process.env.WEBTUNE_PYTHON]
    : [join(root, '.venv', 'bin', 'python'), '/usr/bin/python3'];
  const reasons = [];
  for (const python of candidates) {
    if (!existsSync(python)) {
      reasons.push(`${python}: not found`);
      continue;
    }
    const check = spawnSync(python, ['-c', 'import torch, transformers, peft'], { encoding: 'utf8' });
    if (check.status === 0) return { python };
    reasons.push(`${python}: ${check.stderr.trim().split('\n').pop()}`);
  }
  return {
    python: null,
    reason: `no Python with torch, transformers and peft (${reasons.join('; ')}); run WEBTUNE_SETUP_TORCH=1 tools/setup/setup.sh or set WEBTUNE_PYTHON`,
  };
}

/** The last JSON line a child printed; null (and the reason on stderr) when it failed. */
function runChild(command, commandArgs) {
  try {
    return runChildOrThrow(command, commandArgs);
  } catch (error) {
    console.error(`versus-transformers: ${command} failed: ${error.message.split('\n')[0]}`);
    return null;
  }
}

function runChildOrThrow(command, commandArgs) {
  const output = execFileSync(command, commandArgs, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  return JSON.parse(output.trim().split('\n').pop());
}

async function runHarness() {
  const repeats = Number(option('repeats') ?? process.env.WEBTUNE_BENCH_REPEATS ?? 3);
  const warmup = Number(option('warmup') ?? process.env.WEBTUNE_BENCH_WARMUP ?? 1);
  if (!(Number.isInteger(repeats) && repeats >= 1 && Number.isInteger(warmup) && warmup >= 0)) {
    console.error('versus-transformers: --repeats must be an integer >= 1 and --warmup an integer >= 0');
    process.exit(2);
  }
  const only = option('only') ? new RegExp(option('only')) : null;
  const generateOptions = option('generate-options') ? JSON.parse(option('generate-options')) : {};
  const tuning = option('tuning') ? JSON.parse(option('tuning')) : null;
  const { python, reason } = findPython();
  if (!python) console.error(`versus-transformers: baseline absent: ${reason}`);
  const lpThreads = process.env.LP_NUM_THREADS ?? `unset (lavapipe then uses ${cpus().length} threads)`;
  const cases = [];
  for (const shape of Object.keys(STEP_SHAPES)) {
    for (const kind of ['lora-sft', 'prefill', 'decode']) {
      const name = `${kind} ${shape}`;
      if (!only || only.test(name)) cases.push({ name, shape, case: kind });
    }
  }
  if (cases.length === 0) {
    console.error(`versus-transformers: no case matches --only=${option('only')}`);
    process.exit(2);
  }
  for (const spec of cases) {
    const shape = STEP_SHAPES[spec.shape];
    console.error(`versus-transformers: ${spec.name} (webtune) ...`);
    const worker = { shape: spec.shape, case: spec.case, warmup, repeats, generateOptions, tuning };
    const webtune = runChild(process.execPath, [
      '--expose-gc',
      fileURLToPath(import.meta.url),
      `--worker=${JSON.stringify(worker)}`,
    ]);
    let baseline = null;
    if (python) {
      console.error(`versus-transformers: ${spec.name} (Transformers + PEFT) ...`);
      const c = shape.config;
      baseline = runChild(python, [
        join(here, 'transformers_baseline.py'),
        JSON.stringify({
          case: spec.case,
          config: {
            hidden_size: c.hiddenSize,
            intermediate_size: c.intermediateSize,
            num_hidden_layers: c.numHiddenLayers,
            num_attention_heads: c.numAttentionHeads,
            num_key_value_heads: c.numKeyValueHeads,
            vocab_size: c.vocabSize,
            tie_word_embeddings: true,
            max_position_embeddings: 512,
            rms_norm_eps: 1e-5,
          },
          batch: shape.batch,
          seq: shape.seq,
          prompt: PROMPT,
          new_tokens: NEW_TOKENS,
          ...LORA,
          warmup,
          repeats,
        }),
      ]);
    }
    const context = {
      shape: spec.shape,
      ...(spec.case === 'lora-sft'
        ? { batch: shape.batch, seq: shape.seq, lora: `r ${LORA.r}, alpha ${LORA.alpha}, all-linear` }
        : spec.case === 'prefill'
          ? { batch: 1, prompt: PROMPT }
          : { batch: 1, prompt: PROMPT, new_tokens: NEW_TOKENS }),
      dtype: 'f32',
      statistic: `median of ${repeats} after ${warmup} warm-up`,
      ...(spec.case !== 'lora-sft' && Object.keys(generateOptions).length > 0
        ? { generate_options: generateOptions }
        : {}),
      webtune_runs_s: webtune?.runs ?? null,
      baseline_runs_s: baseline?.runs ?? null,
      webtune_adapter: webtune ? `${webtune.adapter} (${webtune.adapter_class})` : null,
      lp_num_threads: lpThreads,
      baseline_name: baseline
        ? `transformers ${baseline.transformers} + peft ${baseline.peft}, torch ${baseline.torch} CPU, ${baseline.threads} threads, ${baseline.attention} attention`
        : null,
      ...(baseline ? {} : { baseline_absent: python ? 'the baseline run failed (see stderr)' : reason }),
      ...(webtune ? {} : { webtune_failed: 'the webtune run failed (see stderr)' }),
    };
    const row = (name, unit, better, ours, theirs, extra = {}) =>
      console.log(
        JSON.stringify({
          case: name,
          unit,
          webtune: ours,
          baseline: theirs,
          ratio: ours != null && theirs ? Number((ours / theirs).toPrecision(4)) : null,
          better,
          ...extra,
          ...context,
        }),
      );
    row(
      spec.name,
      'tokens/s',
      'higher',
      webtune ? round(webtune.tokens_per_second) : null,
      baseline ? round(baseline.tokens_per_second) : null,
    );
    row(
      `${spec.name} peak memory`,
      'bytes',
      'lower',
      webtune?.peak_rss_above_baseline_bytes ?? null,
      baseline?.peak_rss_above_baseline_bytes ?? null,
      {
        measure: 'peak resident set above the process before the model was built, both sides',
        webtune_device_peak_bytes: webtune?.device_peak_bytes ?? null,
      },
    );
  }
}

function round(value) {
  return Number(value.toPrecision(4));
}
