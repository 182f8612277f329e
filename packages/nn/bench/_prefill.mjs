const { CausalLM, createModelConfig, generateWithTimings, initializeModel } = await import('@webtune/nn');
const { createDevice } = await import('@webtune/tensors');
const device = await createDevice();
const SH = {
  stories260K: { hiddenSize: 64, intermediateSize: 172, numHiddenLayers: 5, numAttentionHeads: 8, numKeyValueHeads: 4, vocabSize: 512 },
  stories15M: { hiddenSize: 288, intermediateSize: 768, numHiddenLayers: 6, numAttentionHeads: 6, numKeyValueHeads: 6, vocabSize: 32000 },
};
const shape = process.argv[2] ?? 'stories260K';
const config = createModelConfig({ ...SH[shape], tieWordEmbeddings: true, maxPositionEmbeddings: 512, bosTokenId: 1, eosTokenIds: [2] });
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const ids = [1, ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)))];
for (let run = 0; run < 6; run++) {
  const before = { ...device.stats };
  const cpu = process.cpuUsage();
  const { timings } = await generateWithTimings(model, null, [ids], { maxNewTokens: Number(process.argv[3] ?? 1), stopTokens: [] });
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ prefillMs: +timings.prefillMs.toFixed(1), decodeMs: +timings.decodeMs.toFixed(1), cpuMs: (used.user + used.system) / 1000, dispatches: device.stats.dispatches - before.dispatches, submits: device.stats.submits - before.submits, readbacks: device.stats.readbacks - before.readbacks }));
}
device.destroy();
