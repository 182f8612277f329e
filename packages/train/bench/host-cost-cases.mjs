// The host-cost cases shared by bench/host-cost.mjs and tools/gpu-bench/run.mjs (its `--host`
// section): webtune's prefill, decode and LoRA SFT step at the Qwen3 structures on a device whose
// kernels cost nothing, so the wall time is what the host spends dispatching (the op layer,
// autograd tape, buffer pool, uniforms, bind groups, Dawn's validation and encoding, submits and
// read-backs). On Dawn's null backend every pipeline and bind group is still validated, but no
// kernel runs: that is the floor a real GPU cannot go under.
//
// What is trimmed, and why the host cost stays that of the real model:
// - Layers: each case runs at two layer counts (default 1 and 3) and is extrapolated to the real
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
 * kernel, so mapped bytes are stale; zeros make generation go on with token 0 and the loss stay finite.
 */
export function zeroReadBacks(device) {
  const probe = device.gpu.createBuffer({ size: 4, usage: 1 /* MAP_READ */ | 8 /* COPY_DST */ });
  const prototype = Object.getPrototypeOf(probe);
  probe.destroy();
  if (prototype[zeroed]) return;
  const original = prototype.getMappedRange;
  prototype.getMappedRange = function getMappedRange(...args) {
    const range = original.apply(this, args);
    new Uint8Array(range).fill(0);
    return range;
  };
  prototype[zeroed] = true;
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
 * (medians of `repeats` after `warmup`), with dispatches, submits and read-backs of each.
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
    if (cases.includes('prefill') || cases.includes('decode')) {
      const ids = [1, ...Array.from({ length: prompt - 1 }, (_, i) => 3 + ((i * 7919) % (vocab - 3)))];
      const generation = { maxNewTokens: newTokens, stopTokens: [] };
      const runs = [];
      for (let r = 0; r < warmup + repeats; r++) {
        const before = statsNow(device);
        const { timings } = await nn.generateWithTimings(model, null, [ids], generation);
        const all = delta(statsNow(device), before);
        if (r >= warmup) runs.push({ timings, all });
      }
      const t = runs[0].timings;
      out.prefill = {
        ms: median(runs.map((run) => run.timings.prefillMs)),
        dispatches: runs[0].all.dispatches - t.decodeDispatches,
        submits: runs[0].all.submits - t.decodeSubmits,
        readbacks: runs[0].all.readbacks - t.decodeReadbacks,
        path: t.prefillPath,
      };
      out.decode = {
        ms: median(runs.map((run) => run.timings.decodeMs / run.timings.decodeSteps)),
        dispatches: t.decodeDispatches / t.decodeSteps,
        submits: t.decodeSubmits / t.decodeSteps,
        readbacks: t.decodeReadbacks / t.decodeSteps,
        fused: t.fused,
      };
      log?.(`  ${size} x${layers}: prefill ${out.prefill.ms.toFixed(2)} ms, decode ${out.decode.ms.toFixed(3)} ms/token`);
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
      out['lora-sft'] = {
        ms: median(times.slice(warmup)),
        ...last,
        cpuMs: median(counts.slice(warmup).map((c) => c.cpuMs)),
      };
      log?.(`  ${size} x${layers}: LoRA step ${out['lora-sft'].ms.toFixed(1)} ms`);
    }
  } finally {
    model.dispose();
  }
  return out;
}

/** The value at `layers` of the line through (a, at a) and (b, at b). */
const extrapolate = (a, va, b, vb, layers) => va + ((vb - va) / (b - a)) * (layers - a);

/**
 * JSON rows (the benchmark row format: case, unit, webtune, ...) of one structure: each case
 * measured at `layerCounts` [a, b] and extrapolated to 28 layers.
 */
export function hostCostRows(size, points, context) {
  const [a, b] = context.layerCounts;
  const rows = [];
  const units = { prefill: 'host ms per prefill', decode: 'host ms per token', 'lora-sft': 'host ms per step' };
  const tokens = { prefill: context.prompt, decode: 1, 'lora-sft': context.seq };
  for (const name of ['prefill', 'decode', 'lora-sft']) {
    const pa = points[a]?.[name];
    const pb = points[b]?.[name];
    if (!pa || !pb) continue;
    const at = (field) => extrapolate(a, pa[field], b, pb[field], QWEN3_LAYERS);
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
      submits: Math.round(at('submits')),
      readbacks: Math.round(at('readbacks')),
      host_us_per_dispatch: Number(((ms * 1000) / dispatches).toPrecision(3)),
      // Tokens/s if the GPU's own time were zero: the host alone allows no more.
      ceiling_tokens_per_s: Number(ceiling.toPrecision(4)),
      target_tokens_per_s: target,
      ceiling_over_target: target ? Number((ceiling / target).toFixed(2)) : null,
      per_layer_ms: Number(((pb.ms - pa.ms) / (b - a)).toPrecision(3)),
      per_layer_dispatches: (pb.dispatches - pa.dispatches) / (b - a),
      measured: { [a]: pa, [b]: pb },
      ...(context.checked?.[name] ? { checked_at: context.checked[name] } : {}),
      structure: `Qwen3-${size}: ${QWEN3_LAYERS} layers (extrapolated from ${a} and ${b}), hidden ${QWEN3_STRUCTURES[size].hiddenSize}, intermediate ${QWEN3_STRUCTURES[size].intermediateSize}, 16/8 heads, head dim 128, ${context.qkNorm === false ? 'NO q/k norms' : 'q/k norms'}, tied embeddings`,
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
