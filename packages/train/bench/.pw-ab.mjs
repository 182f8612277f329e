// A/B of prefill tunings in one process: one device (and model, same seed) per tuning, calls alternate.
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { STEP_SHAPES } from '/work/wt-prefillwarm/packages/train/bench/step-shapes.mjs';
const shape = STEP_SHAPES[process.argv[2] ?? 'stories15M'];
const tunings = JSON.parse(process.argv[3]);
const rounds = Number(process.argv[4] ?? 8);
const setups = [];
for (const tuning of tunings) {
  const device = await createDevice({ tuning });
  const config = createModelConfig({ ...shape.config, tieWordEmbeddings: true, maxPositionEmbeddings: 512, bosTokenId: 1, eosTokenIds: [2] });
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  setups.push({ tuning, device, model, times: [], config });
}
const ids = [1, ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919) % (setups[0].config.vocabSize - 3)))];
for (let round = 0; round < rounds + 2; round++) {
  for (const s of setups) {
    const { timings, results } = await generateWithTimings(s.model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
    if (round >= 2) s.times.push(timings.prefillMs);
    s.token = results[0].tokens[0];
  }
}
const med = (l) => [...l].sort((a, b) => a - b)[Math.floor(l.length / 2)];
for (const s of setups) console.log(JSON.stringify(s.tuning), 'median', med(s.times).toFixed(1), 'min', Math.min(...s.times).toFixed(1), 'token', s.token);
