import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { STEP_SHAPES } from '/work/wt-prefill/packages/train/bench/step-shapes.mjs';
const shape = STEP_SHAPES[process.argv[2] ?? 'stories260K'];
const n = Number(process.argv[3] ?? 12);
const device = await createDevice({});
const config = createModelConfig({ ...shape.config, tieWordEmbeddings: true, maxPositionEmbeddings: 512, bosTokenId: 1, eosTokenIds: [2] });
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const ids = [1, ...Array.from({ length: 127 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)))];
const out = [];
for (let run = 0; run < n; run++) {
  const s0 = { ...device.stats };
  const cpu = process.cpuUsage();
  const { timings } = await generateWithTimings(model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
  const used = process.cpuUsage(cpu);
  out.push(`${timings.prefillMs.toFixed(1)}(${((used.user + used.system) / 1000).toFixed(0)}cpu,${device.stats.pipelines - s0.pipelines}p)`);
}
console.log(out.join(' '));
console.log(JSON.stringify(device.stats));
model.dispose(); device.destroy();
