// The host-cost cases shared by bench/host-cost.mjs and tools/gpu-bench/run.mjs (its `--host`
// section): webtune's prefill, decode and LoRA SFT step at the Qwen3 structures on a device whose
// kernels cost nothing, so the time is what the host spends dispatching (the op layer, autograd
// tape, buffer pool, uniforms, bind groups, Dawn's validation and encoding, submits and
// read-backs). On Dawn's null backend every pipeline and bind group is still validated, but no
// kernel runs: that is the floor a real GPU cannot go under. The figures are the process's CPU
// time (see `fastest` below for why not the wall time).
//
// What is trimmed, and why the host cost stays that of the real model:
// - Layers: each case runs at two layer counts (default 2 and 10 at 0.6B, 2 and 6 at 1.7B; the
//   step 1 and 3) and is extrapolated to the real
//   count (28) by the per-layer slope. Every decoder layer dispatches the same kernels with the
//   same grids, so dispatches, submits and host time are affine in the layer count; the rows
//   carry both measured points, and the dispatch counts extrapolated this way are exact (checked
//   by `--check-layers=N`, which also measures at N layers directly). Dawn's null backend caps
//   device memory near 512 MiB, which 28 layers of the real widths do not fit.
// - Vocabulary: 151,936 -> `vocab` (default 8,192). It changes the head's and the loss's grids,
//   not their dispatch count, while the head fits one binding (the null backend's 128 MiB): a
//   split head adds one product per extra buffer. The rows say how many buffers the full head
//   would take in the base format.
// - Widths and heads are the real ones (hidden, intermediate, 16 query / 8 key-value heads,
//   head dim 128, q/k norms, tied embeddings), so every kernel variant selected is the real one.
// - Weights are zeros (no kernel runs, so values do not matter) in the chosen base format.

import { loadavg } from 'node:os';

/** The real Qwen3 structures (config.json of Qwen/Qwen3-0.6B and Qwen/Qwen3-1.7B). */
export const QWEN3_STRUCTURES = {
  '0.6B': { hiddenSize: 1024, intermediateSize: 3072 },
  '1.7B': { hiddenSize: 2048, intermediateSize: 6144 },
};
export const QWEN3_LAYERS = 28;
export const QWEN3_VOCAB = 151936;

/** #21's H100 targets these host ceilings are set beside (tokens/s). */
export const TARGETS = {
  decode: { '1.7B': 150 },
  'lora-sft': { '1.7B': 1000 },
};

const zeroed = Symbol('webtune.hostCost.zeroedReadBacks');

/**
 * Makes every read-back of this device's Dawn instance return zeros: the null backend runs no
 * kernel, so mapped bytes are stale; zeros make generation go on with token 0 and the loss stay
 * finite. Returns the function that undoes it.
 */
export function zeroReadBacks(device) {
  const probe = device.gpu.createBuffer({ size: 4, usage: 1 /* MAP_READ */ | 8 /* COPY_DST */ });
  const prototype = Object.getPrototypeOf(probe);
  probe.destroy();
  if (prototype[zeroed]) return () => {};
  // The class is shared by every device of the process: the returned function undoes this.
  const original = prototype.getMappedRange;
  prototype.getMappedRange = function getMappedRange(...args) {
    const range = original.apply(this, args);
    new Uint8Array(range).fill(0);
    return range;
  };
  prototype[zeroed] = true;
  return () => {
    prototype.getMappedRange = original;
    delete prototype[zeroed];
  };
}

/** A Qwen3 structure's model config at `layers` layers and `vocab` ids. */
export function qwen3Structure(size, layers, vocab, qkNorm = true) {
  return {
    ...QWEN3_STRUCTURES[size],
    architecture: 'Qwen3ForCausalLM',
    numHiddenLayers: layers,
    numAttentionHeads: 16,
    numKeyValueHeads: 8,
    headDim: 128,
    vocabSize: vocab,
    tieWordEmbeddings: true,
    qkNorm,
    maxPositionEmbeddings: 4096,
    bosTokenId: 1,
    eosTokenIds: [2],
  };
}

async function* zeroEntries(model) {
  for (const [name, slot] of model.namedSlots()) {
    if (model.config.tieWordEmbeddings && name === 'lm_head.weight') continue;
    const size = slot.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (name.endsWith('norm.weight')) values.fill(1);
    yield { name, dtype: 'F32', shape: [...slot.shape], data: new Uint8Array(values.buffer) };
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
// Host cost under other load is slower, never faster: the fastest repeat is the steadier figure.
// The figures are the process's CPU time (JS and Dawn's encoding and validation, on every thread):
// the wall time also holds the waits for read-backs, whose polling sleeps (dawn-polling.ts) are
// as long on the null backend as the schedule makes them; it is kept beside (`wallMs`).
const fastest = (values) => Math.min(...values);
const statsNow = (device) => {
  const cpu = process.cpuUsage();
  return { ...device.stats, cpu: (cpu.user + cpu.system) / 1000 };
};
/** Device work between two `statsNow`, and the process's CPU ms (every thread: JS and Dawn's). */
const delta = (after, before) => ({
  dispatches: after.dispatches - before.dispatches,
  submits: after.submits - before.submits,
  readbacks: after.readbacks - before.readbacks,
  bindGroups: after.bindGroups - before.bindGroups,
  buffers: after.buffers - before.buffers,
  pipelines: after.pipelines - before.pipelines,
  cpuMs: after.cpu - before.cpu,
});

/**
 * One structure at one layer count: host ms per prefill, per decode token and per LoRA step
 * (the fastest and the median of `repeats` after `warmup`), with dispatches, submits, read-backs,
 * bind groups and buffers created, pipelines compiled and (the step) the process's CPU ms.
 * `libs`: { nn, peft, train } (the @webtune modules; the caller imports them).
 */
export async function measureAtLayers(device, libs, options) {
  const { nn, peft, train } = libs;
  const { size, layers, vocab, baseFormat, cases, repeats, warmup, prompt, newTokens, seq, log } = options;
  const config = nn.createModelConfig(qwen3Structure(size, layers, vocab, options.qkNorm ?? true));
  const model = new nn.CausalLM(device, config);
  const out = {};
  try {
    await nn.loadWeights(model, zeroEntries(model), { baseFormat });
    // Loading leaves its f32 uploads in the pool; the null backend's memory cap counts them.
    device.trimPool();
    if (cases.includes('prefill') || cases.includes('decode')) {
      const ids = [1, ...Array.from({ length: prompt - 1 }, (_, i) => 3 + ((i * 7919) % (vocab - 3)))];
      // Each repeat runs a call that only prefills (1 new token: the prompt's) and one that also
      // decodes: the first's CPU time is the prefill's, the difference per step the decode's.
      const short = { maxNewTokens: 1, stopTokens: [] };
      const long = { maxNewTokens: newTokens, stopTokens: [] };
      const runs = [];
      for (let r = 0; r < warmup + repeats; r++) {
        const run = {};
        for (const [name, generation] of [
          ['short', short],
          ['long', long],
        ]) {
          const before = statsNow(device);
          const { timings } = await nn.generateWithTimings(model, null, [ids], generation);
          run[name] = { timings, all: delta(statsNow(device), before) };
        }
        if (r >= warmup) runs.push(run);
      }
      const first = runs[0].short;
      const t = runs[0].long.timings;
      const steps = t.decodeSteps - first.timings.decodeSteps;
      const prefillCpu = fastest(runs.map((run) => run.short.all.cpuMs));
      // Per step: the medians' difference (the fastest of each side need not come from one repeat).
      const decodeCpu =
        (median(runs.map((run) => run.long.all.cpuMs)) - median(runs.map((run) => run.short.all.cpuMs))) /
        steps;
      out.prefill = {
        ms: prefillCpu,
        wallMs: fastest(runs.map((run) => run.long.timings.prefillMs)),
        medianWallMs: median(runs.map((run) => run.long.timings.prefillMs)),
        dispatches: first.all.dispatches - first.timings.decodeDispatches,
        submits: first.all.submits - first.timings.decodeSubmits,
        readbacks: first.all.readbacks - first.timings.decodeReadbacks,
        path: t.prefillPath,
      };
      out.decode = {
        ms: decodeCpu,
        wallMs: fastest(runs.map((run) => run.long.timings.decodeMs / run.long.timings.decodeSteps)),
        medianWallMs: median(runs.map((run) => run.long.timings.decodeMs / run.long.timings.decodeSteps)),
        dispatches: t.decodeDispatches / t.decodeSteps,
        submits: t.decodeSubmits / t.decodeSteps,
        readbacks: t.decodeReadbacks / t.decodeSteps,
        fused: t.fused,
      };
      log?.(
        `  ${size} x${layers}: prefill ${out.prefill.ms.toFixed(2)} ms, decode ${out.decode.ms.toFixed(3)} ms/token (CPU)`,
      );
    }
    if (cases.includes('lora-sft')) {
      const lora = await peft.getPeftModel(
        model,
        peft.loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }),
        { seed: 0 },
      );
      const steps = warmup + repeats;
      const rows = Array.from({ length: steps }, (_, r) => {
        const ids = Array.from({ length: seq }, (_, t) => (r * 7919 + t * 104729) % vocab);
        return { inputIds: ids, labels: ids };
      });
      const times = [];
      const counts = [];
      let before = statsNow(device);
      await train.train({
        model: train.trainablePeftModel(lora),
        task: train.supervisedTask({ stage: 'pt' }),
        train: rows,
        args: {
          perDeviceTrainBatchSize: 1,
          maxSteps: steps,
          learningRate: 1e-4,
          lrSchedulerType: 'constant',
          maxGradNorm: 1,
          shuffle: false,
        },
        onEvent: (event) => {
          if (event.type !== 'step-end') return;
          const now = statsNow(device);
          times.push(event.stepMs);
          counts.push(delta(now, before));
          before = now;
        },
      });
      const last = counts.at(-1);
      const { cpuMs, ...countsOfLast } = last;
      out['lora-sft'] = {
        ms: fastest(counts.slice(warmup).map((c) => c.cpuMs)),
        wallMs: fastest(times.slice(warmup)),
        medianWallMs: median(times.slice(warmup)),
        ...countsOfLast,
      };
      log?.(`  ${size} x${layers}: LoRA step ${out['lora-sft'].ms.toFixed(1)} ms (CPU)`);
    }
  } finally {
    model.dispose();
    // The null backend's memory cap counts the pool's free buffers too.
    device.trimPool();
  }
  return out;
}

/**
 * JSON rows (the benchmark row format: case, unit, webtune, ...) of one structure: each case
 * measured at `layerCounts` [a, b] and extrapolated to 28 layers.
 */
export function hostCostRows(size, points, context) {
  const rows = [];
  const units = {
    prefill: 'host CPU ms per prefill',
    decode: 'host CPU ms per token',
    'lora-sft': 'host CPU ms per step',
  };
  const tokens = { prefill: context.prompt, decode: 1, 'lora-sft': context.seq };
  for (const name of ['prefill', 'decode', 'lora-sft']) {
    const [a, b] = name === 'lora-sft' ? context.stepLayerCounts : context.layerCounts;
    const pa = points[a]?.[name];
    // The slope of another structure where this one does not fit twice (the 1.7B step): every
    // layer dispatches the same kernels at either width (checked: dispatches per layer equal).
    const slope = points[b]?.[name] ? null : context.slopes?.[name];
    const pb = points[b]?.[name] ?? (slope ? { ...slope.at, b: slope.b } : null);
    if (!pa || !pb) continue;
    const perLayer = (field) =>
      slope
        ? (slope.b[field] - slope.a[field]) / (slope.layers[1] - slope.layers[0])
        : (pb[field] - pa[field]) / (b - a);
    const at = (field) => pa[field] + perLayer(field) * (QWEN3_LAYERS - a);
    const ms = at('ms');
    const dispatches = at('dispatches');
    const ceiling = (tokens[name] / ms) * 1000;
    const target = TARGETS[name]?.[size] ?? null;
    rows.push({
      case: `host ${name} Qwen3-${size}`,
      unit: units[name],
      webtune: Number(ms.toPrecision(4)),
      better: 'lower',
      dispatches: Math.round(dispatches),
      // Submits are not affine in the layers: a submit also ends after `maxDispatchesPerSubmit`
      // (decode's, per token, span the 8 tokens of a chunk: a fraction).
      submits: (() => {
        const least = context.maxDispatchesPerSubmit ? dispatches / context.maxDispatchesPerSubmit : 0;
        const value = Math.max(at('submits'), least);
        return name === 'decode' ? Number(value.toFixed(2)) : Math.ceil(value - 1e-9);
      })(),
      readbacks: name === 'decode' ? Number(at('readbacks').toFixed(3)) : Math.round(at('readbacks')),
      host_us_per_dispatch: Number(((ms * 1000) / dispatches).toPrecision(3)),
      // Tokens/s if the GPU's own time were zero: the host alone allows no more.
      ceiling_tokens_per_s: Number(ceiling.toPrecision(4)),
      target_tokens_per_s: target,
      ceiling_over_target: target ? Number((ceiling / target).toFixed(2)) : null,
      per_layer_ms: Number(perLayer('ms').toPrecision(3)),
      per_layer_dispatches: perLayer('dispatches'),
      statistic:
        'process CPU ms at each layer count: prefill and step the fastest repeat, decode the difference of the medians of a prefill-only call and a decoding call, per step (wall times beside, in `measured`)',
      measured: slope ? { [a]: pa } : { [a]: pa, [b]: pb },
      ...(slope
        ? {
            per_layer_from: `${slope.structure} at ${slope.layers.join(' and ')} layers (${slope.a.dispatches} and ${slope.b.dispatches} dispatches); this structure's activations at 2 layers exceed the null backend's 512 MiB`,
          }
        : {}),
      ...(context.checked?.[name]
        ? {
            checked_at: context.checked[name],
            // The line's value at the checked count, to set beside the measured one.
            extrapolated_at_check: {
              ms: Number((pa.ms + perLayer('ms') * (context.checked[name].layers - a)).toPrecision(4)),
              dispatches: pa.dispatches + perLayer('dispatches') * (context.checked[name].layers - a),
            },
          }
        : {}),
      structure: `Qwen3-${size}: ${QWEN3_LAYERS} layers (extrapolated from ${slope ? a : `${a} and ${b}`}), hidden ${QWEN3_STRUCTURES[size].hiddenSize}, intermediate ${QWEN3_STRUCTURES[size].intermediateSize}, 16/8 heads, head dim 128, ${context.qkNorm === false ? 'NO q/k norms' : 'q/k norms'}, tied embeddings`,
      qk_norm: context.qkNorm !== false,
      vocab: context.vocab,
      base: context.baseFormat,
      ...(name === 'lora-sft'
        ? { batch: 1, seq: context.seq, lora: 'r 8, alpha 16, all-linear', optimizer: 'AdamW, clipping 1' }
        : name === 'prefill'
          ? { prompt: context.prompt }
          : { new_tokens: context.newTokens }),
      ...context.common,
    });
  }
  return rows;
}

/**
 * Every case of `sizes` on fresh devices of `adapterClass` (Dawn's null backend unless `backend`
 * is 'adapter'), as JSON rows. `createDevice` and `libs` ({ nn, peft, train }) are the caller's
 * imports. Read-backs return zeros for the run's length on the null backend (restored after).
 */
export async function runHostCost(options) {
  const { createDevice, libs, sizes, adapterClass, cases, stepLayerCounts, checkLayers } = options;
  // Generation's two layer counts: one pair, or a pair per size.
  const countsOf = (size) =>
    Array.isArray(options.layerCounts) ? options.layerCounts : options.layerCounts[size];
  const { backend = 'null', stepTuning = {}, measure, log } = options;
  const dawnOptions = backend === 'null' ? ['backend=null'] : [];
  const generationDevice = await createDevice({ dawnOptions, adapterClass });
  const stepDevice = cases.includes('lora-sft')
    ? await createDevice({ dawnOptions, adapterClass, tuning: stepTuning })
    : null;
  const restore = backend === 'null' ? zeroReadBacks(generationDevice) : () => {};
  const load = [loadavg()[0]];
  log?.(
    `host cost: ${backend === 'null' ? 'Dawn null backend' : 'the adapter'}, class ${adapterClass}, load ${load[0].toFixed(2)}`,
  );
  const measureStructure = async (size, layers, which) => {
    const point = {};
    const generationCases = which.filter((name) => name !== 'lora-sft');
    if (generationCases.length) {
      Object.assign(
        point,
        await measureAtLayers(generationDevice, libs, {
          ...measure,
          size,
          layers,
          cases: generationCases,
          log,
        }),
      );
    }
    if (stepDevice && which.includes('lora-sft')) {
      Object.assign(
        point,
        await measureAtLayers(stepDevice, libs, { ...measure, size, layers, cases: ['lora-sft'], log }),
      );
    }
    return point;
  };
  const rows = [];
  try {
    // A throwaway round first: the JIT and the caches warm up on it, not on the first measured count.
    await measureStructure(sizes[0], 1, cases);
    // The 1.7B step fits the null backend at one layer only: its per-layer cost is the 0.6B step's
    // (the same kernels per layer), so the 0.6B step is measured first whenever the 1.7B one is.
    const order =
      stepDevice && sizes.includes('1.7B') ? ['0.6B', ...sizes.filter((s) => s !== '0.6B')] : sizes;
    const slopes = {};
    for (const size of order) {
      const points = {};
      const layerCounts = countsOf(size);
      const generationCases = sizes.includes(size) ? cases.filter((name) => name !== 'lora-sft') : [];
      const stepCounts = size === '1.7B' ? [stepLayerCounts[0]] : stepLayerCounts;
      for (const layers of new Set([...layerCounts, ...stepCounts])) {
        const which = [
          ...(layerCounts.includes(layers) ? generationCases : []),
          ...(stepCounts.includes(layers) && stepDevice ? ['lora-sft'] : []),
        ];
        if (which.length) points[layers] = await measureStructure(size, layers, which);
      }
      if (size === '0.6B' && stepDevice) {
        const [a, b] = stepLayerCounts;
        slopes['lora-sft'] = {
          structure: 'Qwen3-0.6B',
          layers: stepLayerCounts,
          a: points[a]['lora-sft'],
          b: points[b]['lora-sft'],
        };
      }
      if (!sizes.includes(size)) continue;
      let checked;
      if (checkLayers) {
        // Generation only: the step's activations at more layers exceed the null backend's memory.
        const direct = await measureStructure(
          size,
          checkLayers,
          cases.filter((name) => name !== 'lora-sft'),
        );
        checked = Object.fromEntries(
          Object.entries(direct).map(([name, value]) => [name, { layers: checkLayers, ...value }]),
        );
      }
      load.push(loadavg()[0]);
      const headBytes = { f32: 4, f16: 2, q4_0: 18 / 32 }[measure.baseFormat] ?? 4;
      rows.push(
        ...hostCostRows(size, points, {
          ...measure,
          layerCounts,
          stepLayerCounts,
          slopes: size === '1.7B' ? slopes : undefined,
          maxDispatchesPerSubmit: generationDevice.tuning.maxDispatchesPerSubmit,
          checked,
          common: {
            adapter_class: adapterClass,
            backend:
              backend === 'null'
                ? 'dawn null (no kernel runs: host cost only)'
                : 'adapter (GPU time included)',
            ...(stepDevice ? { step_tuning: stepTuning } : {}),
            full_vocab_head_buffers: Math.ceil(
              (QWEN3_VOCAB * QWEN3_STRUCTURES[size].hiddenSize * headBytes) /
                generationDevice.maxBindingBytes,
            ),
            load: load.map((value) => Number(value.toFixed(2))),
            node: process.version,
          },
        }),
      );
    }
  } finally {
    restore();
    generationDevice.destroy();
    stepDevice?.destroy();
  }
  return rows;
}
