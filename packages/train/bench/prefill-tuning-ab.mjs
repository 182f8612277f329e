// Two device tunings of one build, alternated call by call in one process: the same model (random
// weights, the versus-transformers prefill case) on two devices, each prefill (1 x prompt tokens,
// up to the first new token) timed in turn, so both tunings see the same machine load. Prints
// one JSON line per tuning: median and min prefill ms over the calls after the warm-up, and the
// pipelines each device compiled (all of them: the first call's).
//
//   pnpm --filter @webtune/train build && node --expose-gc bench/prefill-tuning-ab.mjs
//     [--shape=stories15M|stories260K] [--prompt=128] [--calls=15] [--warmup=3]
//     [--a=<JSON tuning>] [--b=<JSON tuning>]
//
// Default: a = the prefill products on the training matmul's tile (24 rows, row tiles outer: the
// kernels before session 6), b = the class's own prefill tuning.
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { benchPrompt, benchShape, generationConfig } from './step-shapes.mjs';

const { option, shapeName, shape } = benchShape('prefill-tuning-ab', 'stories15M');
const prompt = Number(option('prompt') ?? 128);
const calls = Number(option('calls') ?? 15);
const warmup = Number(option('warmup') ?? 3);
const tunings = {
  a: JSON.parse(option('a') ?? '{"prefillTileRows":[24],"prefillRowsSlack":0,"prefillRowTilesInner":false}'),
  b: JSON.parse(option('b') ?? '{}'),
};
const config = generationConfig(createModelConfig, shape);
const ids = benchPrompt(config, prompt);
const sides = [];
for (const [name, tuning] of Object.entries(tunings)) {
  const device = await createDevice({ tuning });
  const model = initializeModel(new CausalLM(device, config), { seed: 0 });
  sides.push({ name, tuning, device, model, ms: [], first: 0, tokens: null });
}
for (let call = 0; call < warmup + calls; call++) {
  for (const side of call % 2 === 0 ? sides : [...sides].reverse()) {
    globalThis.gc?.();
    const { results, timings } = await generateWithTimings(side.model, null, [ids], {
      maxNewTokens: 1,
      stopTokens: [],
    });
    if (call === 0) {
      side.first = timings.prefillMs;
      side.tokens = results[0].tokens;
    } else if (call >= warmup) side.ms.push(timings.prefillMs);
  }
}
const median = (list) => [...list].sort((p, q) => p - q)[list.length >> 1];
for (const side of sides) {
  console.log(
    JSON.stringify({
      shape: shapeName,
      prompt,
      tuning: side.name,
      overrides: side.tuning,
      median_ms: +median(side.ms).toFixed(2),
      min_ms: +Math.min(...side.ms).toFixed(2),
      tokens_per_s: Math.round(prompt / (median(side.ms) / 1000)),
      first_call_ms: +side.first.toFixed(1),
      pipelines: side.device.stats.pipelines,
      first_token: side.tokens?.[0] ?? null,
      ms: side.ms.map((v) => +v.toFixed(1)),
    }),
  );
}
for (const side of sides) {
  side.model.dispose();
  side.device.destroy();
}
