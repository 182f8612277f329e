import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { STEP_SHAPES } from '/work/wt-prefill/packages/train/bench/step-shapes.mjs';
const shape = STEP_SHAPES[process.argv[2] ?? 'stories260K'];
const n = Number(process.argv[3] ?? 12);
const device = await createDevice({});
const config = createModelConfig({ ...shape.config, tieWordEmbeddings: true, maxPositionEmbeddings: 512, bosTokenId: 1, eosTokenIds: [2] });
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const ids = [1, ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)))];
let flushes = [];
const rec = device.recorder; const orig = rec.flush.bind(rec);
rec.flush = () => { flushes.push(performance.now()); return orig(); };
const out = [];
for (let run = 0; run < n; run++) {
  flushes = [];
  const t0 = performance.now();
  const { timings } = await generateWithTimings(model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
  const t1 = performance.now();
  out.push(`${timings.prefillMs.toFixed(1)}[enc ${(flushes[0] - t0).toFixed(1)} f${flushes.length}]`);
}
console.log(out.join(' '));
model.dispose(); device.destroy();
