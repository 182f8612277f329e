// Greedy decode of a quantized base (QLoRA's quantization_bit 8 / 4: Q8_0 or Q4_0 projections,
// a Q8_0 token table tied to the head) on the fused kernels against the unfused path (the model's
// forward per token, the packed matmul at one row), alternating in one process so that the
// shared machine's load hits both alike. Random weights: speed depends on the shape only.
//   node --expose-gc bench/quantized-decode.mjs [--shape=stories15M|stories260K]
//     [--base=q8_0,q4_0] [--tokens=128] [--prompt=128] [--repeats=3] [--tuning=<JSON>]
// stdout: one JSON row per base and path: tokens/s (median of the repeats after one warm-up),
// dispatches, submits and readbacks per decoded token, the call's process CPU time (prefill
// included; steadier than wall time on a loaded machine), and each run's tokens/s.
const { CausalLM, createModelConfig, generateWithTimings, initializeModel, packFrozenWeights } = await import(
  '@webtune/nn'
);
const { createDevice } = await import('@webtune/tensors');

const args = process.argv.slice(2);
const option = (name, fallback) =>
  args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const SHAPES = {
  stories260K: {
    hiddenSize: 64,
    intermediateSize: 172,
    numHiddenLayers: 5,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    vocabSize: 512,
  },
  stories15M: {
    hiddenSize: 288,
    intermediateSize: 768,
    numHiddenLayers: 6,
    numAttentionHeads: 6,
    numKeyValueHeads: 6,
    vocabSize: 32000,
  },
};
const shapeName = option('shape', 'stories15M');
const bases = option('base', 'q8_0,q4_0').split(',');
const newTokens = Number(option('tokens', 128));
const promptLength = Number(option('prompt', 128));
const repeats = Number(option('repeats', 3));
const tuning = option('tuning', null);
const device = await createDevice(tuning ? { tuning: JSON.parse(tuning) } : {});
const config = createModelConfig({
  ...SHAPES[shapeName],
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 512,
  bosTokenId: 1,
  eosTokenIds: [2],
});
const prompt = [
  1,
  ...Array.from({ length: promptLength - 1 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3))),
];
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
for (const base of bases) {
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  if (base !== 'f32') await packFrozenWeights(model, base);
  const runs = { false: [], true: [] };
  for (let run = 0; run <= repeats; run++) {
    for (const fusedDecode of [false, true]) {
      globalThis.gc?.();
      const cpu = process.cpuUsage();
      const { timings } = await generateWithTimings(model, null, [prompt], {
        maxNewTokens: newTokens,
        stopTokens: [],
        fusedDecode,
      });
      const used = process.cpuUsage(cpu);
      // Process CPU time (every lavapipe thread) of the whole call, prefill included: less
      // sensitive to the machine's load than wall time.
      if (run > 0) runs[fusedDecode].push({ ...timings, cpuMs: (used.user + used.system) / 1000 });
    }
  }
  for (const fused of ['false', 'true']) {
    const list = runs[fused];
    const per = (key) => list[0][key] / list[0].decodeSteps;
    console.log(
      JSON.stringify({
        case: `greedy decode ${shapeName}, ${base} base, ${newTokens} new`,
        path: fused === 'true' ? 'fused' : 'unfused',
        unfused_reason: list[0].unfusedReason,
        tokens_per_second: +median(list.map((t) => (t.decodeSteps / t.decodeMs) * 1000)).toFixed(1),
        dispatches_per_token: +per('decodeDispatches').toFixed(2),
        submits_per_token: +per('decodeSubmits').toFixed(3),
        readbacks_per_token: +per('decodeReadbacks').toFixed(3),
        call_cpu_ms: +median(list.map((t) => t.cpuMs)).toFixed(0),
        prefill_ms: +median(list.map((t) => t.prefillMs)).toFixed(0),
        runs_tokens_per_second: list.map((t) => +((t.decodeSteps / t.decodeMs) * 1000).toFixed(1)),
      }),
    );
  }
  model.dispose();
}
device.destroy();
