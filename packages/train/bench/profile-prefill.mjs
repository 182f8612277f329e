// Where one prefill (1 x prompt tokens, up to the first new token) spends its time: GPU time per
// kernel from `timestamp-query` (Device.startProfile), dispatch, submit and read-back counts,
// pipelines compiled, beside the plain wall-clock and CPU time. Same model and prompt as the
// prefill case of versus-transformers.mjs (random weights, f32, greedy).
//
//   pnpm --filter @webtune/train build && node bench/profile-prefill.mjs [--shape=stories260K|stories15M]
//     [--warmup=N] [--prompt=N] [--keys] [--json] [--fused-prefill-tokens=N] [--tiled-prefill=true|false]
//     [--tuning=<JSON>]
//
// --warmup: unprofiled prefills before the profiled one (default 3; the median of their times
// after the first is the plain wall time). --fused-prefill-tokens, --tiled-prefill: generate's
// options of those names (default: generate's choice for the adapter). --tuning: the device's
// Tuning overrides (to compare kernel tiles in one build).
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice, formatKernelProfile } from '@webtune/tensors';
import { benchPrompt, benchShape, generationConfig } from './step-shapes.mjs';

const args = process.argv.slice(2);
const { option, shapeName, shape } = benchShape('profile-prefill', 'stories260K', args);
const warmup = Number(option('warmup') ?? 3);
const prompt = Number(option('prompt') ?? 128);
if (!Number.isInteger(warmup) || warmup < 1 || !Number.isInteger(prompt) || prompt < 1) {
  console.error('profile-prefill: --warmup and --prompt must be integers >= 1');
  process.exit(2);
}
const fusedPrefillTokens = option('fused-prefill-tokens')
  ? Number(option('fused-prefill-tokens'))
  : undefined;
const tiledPrefill = option('tiled-prefill') ? option('tiled-prefill') === 'true' : undefined;

const tuning = option('tuning') ? JSON.parse(option('tuning')) : undefined;
const device = await createDevice({
  dawnOptions: ['disable-dawn-features=timestamp_quantization'],
  ...(tuning ? { tuning } : {}),
});
const config = generationConfig(createModelConfig, shape);
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const ids = benchPrompt(config, prompt);
const options = {
  maxNewTokens: 1,
  stopTokens: [],
  ...(fusedPrefillTokens !== undefined ? { fusedPrefillTokens } : {}),
  ...(tiledPrefill !== undefined ? { tiledPrefill } : {}),
};
const plainMs = [];
const plainCpuMs = [];
// Every warm-up call's prefill time, the first included: calls 2-4 are what versus-transformers
// times (median of 3 after 1 warm-up), and first-use costs (fresh buffers, JavaScript not yet
// optimised, Dawn's deferred clean-up) show there rather than in the warm median.
const callMs = [];
for (let run = 0; run < warmup; run++) {
  const cpu = process.cpuUsage();
  const { timings } = await generateWithTimings(model, null, [ids], options);
  const used = process.cpuUsage(cpu);
  callMs.push(Math.round(timings.prefillMs * 10) / 10);
  if (run > 0 || warmup === 1) {
    plainMs.push(timings.prefillMs);
    plainCpuMs.push((used.user + used.system) / 1000);
  }
}
const pipelinesBefore = device.stats.pipelines;
device.startProfile();
const { timings } = await generateWithTimings(model, null, [ids], options);
const profile = await device.stopProfile();
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? null;
const plainPrefillMs = median(plainMs);
const summary = {
  shape: shapeName,
  prompt,
  adapter: `${device.info.vendor} ${device.info.architecture} ${device.info.device ?? ''}`.trim(),
  plain_prefill_ms: plainPrefillMs,
  plain_tokens_per_s: Math.round(prompt / (plainPrefillMs / 1000)),
  plain_prefill_cpu_ms: median(plainCpuMs),
  profiled_prefill_ms: timings.prefillMs,
  pipelines_compiled_while_profiled: device.stats.pipelines - pipelinesBefore,
  warmup_calls_ms: callMs,
  ...profile,
};
if (args.includes('--json')) {
  console.log(JSON.stringify(summary));
} else {
  console.log(
    `${shapeName} prefill 1 x ${prompt} on ${summary.adapter}: plain ${plainPrefillMs.toFixed(1)} ms (${summary.plain_tokens_per_s} tok/s, process CPU ${summary.plain_prefill_cpu_ms.toFixed(0)} ms), profiled ${timings.prefillMs.toFixed(1)} ms, ${summary.pipelines_compiled_while_profiled} pipelines compiled while profiled`,
  );
  console.log(`warm-up calls (ms, the first compiles): ${callMs.join(' ')}`);
  console.log(formatKernelProfile(profile));
  if (args.includes('--keys')) console.log(`\n${formatKernelProfile(profile, profile.keys)}`);
}
model.dispose();
device.destroy();
