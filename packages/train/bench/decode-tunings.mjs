// Greedy decode at a bench shape under several device tunings, alternating call by call in one
// process (the same load for each), e.g. the streaming head against decode's matvec:
//   node --expose-gc bench/decode-tunings.mjs [--shape=stories15M] [--rounds=8] [--new=64]
//     [--tunings='{"old":{"decodeHeadRows":0},"new":{}}']
// Prints one JSON line: per tuning the median ms per token and every call's figure, and the
// process CPU time per token (all lavapipe threads, the prompt included), steadier under load.
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { benchPrompt, benchShape, generationConfig } from './step-shapes.mjs';

const { option, shapeName, shape } = benchShape('decode-tunings', 'stories15M');
const rounds = Number(option('rounds') ?? 8);
const newTokens = Number(option('new') ?? 64);
const prompt = Number(option('prompt') ?? 128);
const tunings = JSON.parse(option('tunings') ?? '{"matvec head":{"decodeHeadRows":0},"streaming head":{}}');
const runs = [];
for (const [name, tuning] of Object.entries(tunings)) {
  const device = await createDevice({ tuning });
  const config = generationConfig(createModelConfig, shape);
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  runs.push({ name, device, model, config, ms: [], cpu: [], tokens: null });
}
const ids = (config) => benchPrompt(config, prompt);
const options = { maxNewTokens: newTokens, stopTokens: [] };
for (let round = 0; round <= rounds; round++) {
  for (const run of runs) {
    const cpu = process.cpuUsage();
    const { results, timings } = await generateWithTimings(run.model, null, [ids(run.config)], options);
    const used = process.cpuUsage(cpu);
    if (round === 0) {
      run.tokens = results[0].tokens.join(',');
      continue;
    }
    run.ms.push(+(timings.decodeMs / timings.decodeSteps).toFixed(2));
    // Process CPU (every lavapipe thread) per new token, the prompt included.
    run.cpu.push(+((used.user + used.system) / 1000 / timings.decodeSteps).toFixed(2));
  }
}
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
console.log(
  JSON.stringify({
    shape: shapeName,
    prompt,
    new_tokens: newTokens,
    load: (await import('node:os')).loadavg().map((v) => +v.toFixed(2)),
    same_tokens: runs.every((run) => run.tokens === runs[0].tokens),
    results: runs.map((run) => ({
      tuning: run.name,
      median_ms_per_token: median(run.ms),
      tokens_per_s: +(1000 / median(run.ms)).toFixed(1),
      ms_per_token: run.ms,
      median_cpu_ms_per_token: median(run.cpu),
      cpu_ms_per_token: run.cpu,
    })),
  }),
);
for (const run of runs) run.device.destroy();
