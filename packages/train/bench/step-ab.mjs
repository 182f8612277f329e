// Two settings of one LoRA SFT step alternated in one process (same load for both): each round
// runs `--steps` steps on device A (default tuning) then on device B (`--tuning-b`), and the
// figures are the medians of every step after each round's first (wall and process CPU time).
// Same step as profile-step.mjs. Under a loaded machine, compare A and B of one run only.
//
//   node --expose-gc bench/step-ab.mjs [--shape=stories260K|stories15M] [--rounds=N] [--steps=N]
//     [--tuning-a=<JSON>] [--tuning-b=<JSON>] [--polling-a=<mode>] [--polling-b=<mode>]
//     [--limits-a=adapter|default|<JSON>] [--limits-b=...]
//
// --limits-a/-b: createDevice's `limits` for that side ('default': WebGPU's default limits).
// --polling-a/-b: the Dawn polling mode (installDawnPolling: sleep, sleep-blind, spin) set before
// each of that side's rounds (default: leave it as createDevice set it).
import { loadavg } from 'node:os';
import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice, installDawnPolling } from '@webtune/tensors';
import { supervisedTask, train, trainablePeftModel } from '@webtune/train';
import { STEP_SHAPES } from './step-shapes.mjs';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const shapeName = option('shape') ?? 'stories260K';
const shape = STEP_SHAPES[shapeName];
if (!shape) {
  console.error(`step-ab: unknown --shape=${shapeName} (${Object.keys(STEP_SHAPES).join(', ')})`);
  process.exit(2);
}
const rounds = Number(option('rounds') ?? 4);
const steps = Number(option('steps') ?? 3);
const sides = [
  {
    name: 'A',
    tuning: JSON.parse(option('tuning-a') ?? '{}'),
    polling: option('polling-a'),
    limits: limitsOption('a'),
  },
  {
    name: 'B',
    tuning: JSON.parse(option('tuning-b') ?? '{}'),
    polling: option('polling-b'),
    limits: limitsOption('b'),
  },
];
function limitsOption(side) {
  const value = option(`limits-${side}`) ?? 'adapter';
  return value.startsWith('{') ? JSON.parse(value) : value;
}
const config = createModelConfig({
  ...shape.config,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 512,
  bosTokenId: 1,
  eosTokenIds: [2],
});
const rows = Array.from({ length: shape.batch }, (_, r) => {
  const ids = Array.from({ length: shape.seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
  return { inputIds: ids, labels: ids };
});
for (const side of sides) {
  side.device = await createDevice({ tuning: side.tuning, limits: side.limits });
  side.model = initializeModel(new CausalLM(side.device, config), { seed: 0 });
  side.peft = await getPeftModel(
    side.model,
    loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }),
    {
      seed: 0,
    },
  );
  side.wall = [];
  side.cpu = [];
  side.dispatches = null;
}
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const loads = [loadavg()[0]];
for (let round = 0; round < rounds; round++) {
  for (const side of sides) {
    if (side.polling) installDawnPolling(side.polling);
    let last = null;
    let before = null;
    await train({
      model: trainablePeftModel(side.peft),
      task: supervisedTask({ stage: 'pt', chunkRows: shape.chunkRows ?? 0 }),
      train: rows,
      args: {
        perDeviceTrainBatchSize: shape.batch,
        maxSteps: steps,
        learningRate: 1e-3,
        lrSchedulerType: 'constant',
        maxGradNorm: 1,
        shuffle: false,
        gradientCheckpointing: false,
      },
      onEvent: (event) => {
        if (event.type !== 'step-end') return;
        const cpu = process.cpuUsage();
        const dispatches = side.device.stats.dispatches;
        if (last && round > 0) {
          side.wall.push(event.stepMs);
          side.cpu.push((cpu.user - last.user + cpu.system - last.system) / 1000);
          side.dispatches = dispatches - before;
        }
        last = cpu;
        before = dispatches;
      },
    });
  }
  loads.push(loadavg()[0]);
}
const tokens = shape.batch * shape.seq;
for (const side of sides) {
  const wall = median(side.wall);
  console.log(
    JSON.stringify({
      side: side.name,
      shape: shapeName,
      tuning: side.tuning,
      polling: side.polling ?? null,
      limits: side.limits,
      step_ms: Number(wall.toFixed(1)),
      tokens_per_s: Math.round(tokens / (wall / 1000)),
      cpu_ms: Number(median(side.cpu).toFixed(0)),
      dispatches_per_step: side.dispatches,
      steps_ms: side.wall.map((x) => Number(x.toFixed(0))),
      load: loads.map((x) => Number(x.toFixed(2))),
    }),
  );
}
for (const side of sides) {
  side.model.dispose();
  side.device.destroy();
}
