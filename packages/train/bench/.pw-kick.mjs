// A/B: an early first submit (after K dispatches recorded on an idle queue) against one submit.
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { STEP_SHAPES } from '/work/wt-prefillwarm/packages/train/bench/step-shapes.mjs';
const shape = STEP_SHAPES[process.argv[2] ?? 'stories260K'];
const kicks = JSON.parse(process.argv[3] ?? '[0, 6]');
const rounds = Number(process.argv[4] ?? 10);
const setups = [];
for (const kick of kicks) {
  const device = await createDevice();
  if (kick > 0) {
    let recorded = 0;
    let idle = true;
    const dispatch = device.dispatch.bind(device);
    device.dispatch = (launch) => {
      dispatch(launch);
      recorded++;
      if (idle && recorded === kick) { device.flush(); idle = false; }
    };
    const read = device.read.bind(device);
    device.read = async (t) => { const r = await read(t); recorded = 0; idle = true; return r; };
  }
  const config = createModelConfig({ ...shape.config, tieWordEmbeddings: true, maxPositionEmbeddings: 512, bosTokenId: 1, eosTokenIds: [2] });
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  setups.push({ kick, device, model, times: [], config });
}
const ids = [1, ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919) % (setups[0].config.vocabSize - 3)))];
for (let round = 0; round < rounds + 2; round++) {
  for (const s of setups) {
    const before = s.device.stats.submits;
    const { timings, results } = await generateWithTimings(s.model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
    if (round >= 2) s.times.push(timings.prefillMs);
    s.token = results[0].tokens[0];
    s.submits = s.device.stats.submits - before;
  }
}
const med = (l) => [...l].sort((a, b) => a - b)[Math.floor(l.length / 2)];
for (const s of setups) console.log('kick', s.kick, 'median', med(s.times).toFixed(2), 'min', Math.min(...s.times).toFixed(2), 'submits', s.submits, 'token', s.token, s.times.map((t) => t.toFixed(1)).join(' '));
