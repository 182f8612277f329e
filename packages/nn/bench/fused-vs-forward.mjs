// Prefill and decode of one 128-token prompt, the fused kernels against the model's own forward,
// alternating in one process (the shared machine's load hits both alike): wall-clock medians and
// process CPU time (every lavapipe thread) of 6 runs after a warm-up.
//   node bench/fused-vs-forward.mjs [stories260K|stories15M] [new tokens, default 1]
const { CausalLM, createModelConfig, generateWithTimings, initializeModel } = await import('@webtune/nn');
const { createDevice } = await import('@webtune/tensors');
const device = await createDevice();
const SH = {
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
const shape = process.argv[2] ?? 'stories260K';
const newTokens = Number(process.argv[3] ?? 1);
const config = createModelConfig({
  ...SH[shape],
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 512,
  bosTokenId: 1,
  eosTokenIds: [2],
});
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const ids = [1, ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)))];
const res = { false: [], true: [] };
for (let run = 0; run < 7; run++)
  for (const fusedDecode of [false, true]) {
    const cpu = process.cpuUsage();
    const { timings } = await generateWithTimings(model, null, [ids], {
      maxNewTokens: newTokens,
      stopTokens: [],
      fusedDecode,
    });
    const used = process.cpuUsage(cpu);
    if (run > 0)
      res[fusedDecode].push([
        +timings.prefillMs.toFixed(1),
        +timings.decodeMs.toFixed(1),
        Math.round((used.user + used.system) / 1000),
      ]);
  }
const med = (a, i) => a.map((r) => r[i]).sort((x, y) => x - y)[a.length >> 1];
for (const k of ['false', 'true'])
  console.log(
    `fused ${k}: prefill ms median ${med(res[k], 0)}, decode ms ${med(res[k], 1)}, cpu ms ${med(res[k], 2)}`,
    JSON.stringify(res[k]),
  );
device.destroy();
