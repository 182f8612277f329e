// Where greedy decoding spends its time: GPU time per kernel from `timestamp-query`
// (Device.startProfile) over the decode steps of one generate call, with dispatches, submits and
// read-backs per token, beside the plain decode time. Same model, prompt and new tokens as the
// decode case of versus-transformers.mjs (random weights, f32, prompt 128, 128 new tokens).
//
//   pnpm --filter @webtune/train build && node bench/profile-decode.mjs [--shape=stories260K|stories15M]
//     [--warmup=N] [--prompt=N] [--new=N] [--keys] [--json]
//
// The profile covers the whole call; the prompt's kernels (prefill-product, attention, embed,
// the prompt's head) are listed too, so read the decode rows (decode:*) per token.
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice, formatKernelProfile } from '@webtune/tensors';
import { benchPrompt, benchShape, generationConfig } from './step-shapes.mjs';

const args = process.argv.slice(2);
const { option, shapeName, shape } = benchShape('profile-decode', 'stories15M', args);
const warmup = Number(option('warmup') ?? 2);
const prompt = Number(option('prompt') ?? 128);
const newTokens = Number(option('new') ?? 128);
const device = await createDevice({ dawnOptions: ['disable-dawn-features=timestamp_quantization'] });
const config = generationConfig(createModelConfig, shape);
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const ids = benchPrompt(config, prompt);
const options = { maxNewTokens: newTokens, stopTokens: [] };
const decodeMs = [];
for (let run = 0; run < warmup; run++) {
  const { timings } = await generateWithTimings(model, null, [ids], options);
  if (run > 0 || warmup === 1) decodeMs.push(timings.decodeMs / timings.decodeSteps);
}
device.startProfile();
const { timings } = await generateWithTimings(model, null, [ids], options);
const profile = await device.stopProfile();
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? null;
const steps = timings.decodeSteps;
const decodeRows = profile.kernels.filter((row) => row.name.startsWith('decode'));
const decodeGpuMs = decodeRows.reduce((sum, row) => sum + row.totalMs, 0);
const summary = {
  shape: shapeName,
  prompt,
  steps,
  plain_ms_per_token: median(decodeMs),
  profiled_ms_per_token: timings.decodeMs / steps,
  decode_kernels_gpu_ms_per_token: decodeGpuMs / steps,
  dispatches_per_token: decodeRows.reduce((sum, row) => sum + row.dispatches, 0) / steps,
  ...profile,
};
if (args.includes('--json')) console.log(JSON.stringify(summary));
else {
  console.log(
    `${shapeName} greedy decode, prompt ${prompt}, ${steps} steps: plain ${summary.plain_ms_per_token.toFixed(2)} ms/token, profiled ${summary.profiled_ms_per_token.toFixed(2)} ms/token, decode kernels' GPU time ${summary.decode_kernels_gpu_ms_per_token.toFixed(2)} ms/token in ${summary.dispatches_per_token.toFixed(1)} dispatches/token`,
  );
  console.log(formatKernelProfile(profile));
  if (args.includes('--keys')) console.log(`\n${formatKernelProfile(profile, profile.keys)}`);
}
model.dispose();
device.destroy();
