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
await generateWithTimings(model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
const original = device.dispatch.bind(device);
const totals = new Map();
let last = null; let lastKey = 'start';
const pending = [];
device.dispatch = (launch) => {
  original(launch);
  device.flush();
  const key = launch.key.split(':').slice(0, 3).join(':');
  pending.push(device.gpu.queue.onSubmittedWorkDone().then(() => {
    const now = process.cpuUsage();
    if (last) { const us = now.user + now.system - last; totals.set(key, (totals.get(key) ?? [0, 0]).map((v, i) => v + (i ? 1 : us))); }
    last = now.user + now.system;
  }));
};
for (let r = 0; r < 3; r++) await generateWithTimings(model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
await Promise.all(pending);
const rows = [...totals].sort((a, b) => b[1][0] - a[1][0]);
for (const [k, [us, n]] of rows) console.log(k.padEnd(40), Math.round(us / 3), 'cpu us per prefill,', n / 3, 'dispatches');
device.destroy();
