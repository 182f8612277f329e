// Where one LoRA SFT training step spends its time: GPU time per kernel from `timestamp-query`
// (Device.startProfile), dispatch, submit and read-back counts, beside the step's wall-clock time.
// Same step as versus-transformers.mjs (r 8, alpha 16, all-linear, AdamW, clipping, every token
// trained, f32, random weights).
//
//   pnpm --filter @webtune/train build && node bench/profile-step.mjs [--shape=stories260K|stories15M]
//     [--warmup=N] [--keys] [--json] [--tuning=<JSON of Tuning overrides>] [--checkpointed-head] [--dawn=<options>]
//     [--activations=f32|f16]
//     [--chunk-rows=auto|0|N]
//
// --warmup: unprofiled steps before the profiled one (default 2; the median of their times after
// the first is printed as the step's plain wall time, and the median CPU time of the process per
// step, which other processes on the same cores disturb less). --keys: also a table per full pipeline key
// (kernel variant). --json: one JSON object on stdout instead of tables.
// Each dispatch runs in its own timestamped compute pass while profiled, so the profiled step's
// wall time is a little longer than a plain one; the kernels' GPU times are their own.
// Dawn quantizes timestamps unless its `timestamp_quantization` toggle is off; this script turns
// it off. Without `timestamp-query` the tables have dispatch counts only.
import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { createDevice, formatKernelProfile } from '@webtune/tensors';
import { supervisedTask, train, trainablePeftModel } from '@webtune/train';
import { STEP_SHAPES } from './step-shapes.mjs';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const shapeName = option('shape') ?? 'stories260K';
const shape = STEP_SHAPES[shapeName];
if (!shape) {
  console.error(`profile-step: unknown --shape=${shapeName} (${Object.keys(STEP_SHAPES).join(', ')})`);
  process.exit(2);
}
const warmup = Number(option('warmup') ?? 2);
if (!Number.isInteger(warmup) || warmup < 1) {
  console.error('profile-step: --warmup must be an integer >= 1');
  process.exit(2);
}

// --checkpointed-head: the chunked classifier recomputes its logits in backward even though the
// head is frozen (the path before tokenCrossEntropy's `frozen`), to compare the two in one build.
const checkpointedHead = args.includes('--checkpointed-head');
// --activations=f16: the activations each layer keeps are stored in f16 (activationDtype).
const activationDtype = option('activations') ?? 'f32';
// --chunk-rows=auto|0|N: the loss's logits chunking instead of the shape's (auto: logitsChunkRows' rule).
const chunkOption = option('chunk-rows');
const chunkRows =
  chunkOption === undefined ? shape.chunkRows : chunkOption === 'auto' ? 'auto' : Number(chunkOption);
// --tuning='{"matmulOuterOperands":false}': tuning overrides, to compare kernel paths.
const tuning = option('tuning') ? JSON.parse(option('tuning')) : undefined;
// --dawn=<option>,...: more of Dawn's create() options (e.g. enable-dawn-features=disable_robustness).
const extraDawn = option('dawn')?.split(',') ?? [];
const device = await createDevice({
  dawnOptions: ['disable-dawn-features=timestamp_quantization', ...extraDawn],
  tuning,
});
const config = createModelConfig({
  ...shape.config,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 512,
  bosTokenId: 1,
  eosTokenIds: [2],
});
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
const peft = await getPeftModel(model, loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }), {
  seed: 0,
});
const rows = Array.from({ length: shape.batch }, (_, r) => {
  const ids = Array.from({ length: shape.seq }, (_, t) => (r * 7919 + t * 104729) % config.vocabSize);
  return { inputIds: ids, labels: ids };
});
const plainMs = [];
// CPU time of the whole process per step (JS, Dawn and, on a software adapter, the shaders):
// less sensitive than wall time to other processes sharing the cores.
const plainCpuMs = [];
let lastCpu = null;
let profiled = null;
let profiledStepMs = null;
await train({
  model: checkpointedHead ? { ...trainablePeftModel(peft), headFrozen: undefined } : trainablePeftModel(peft),
  task: supervisedTask({ stage: 'pt', chunkRows: chunkRows ?? 0 }),
  train: rows,
  args: {
    perDeviceTrainBatchSize: shape.batch,
    maxSteps: warmup + 1,
    learningRate: 1e-3,
    lrSchedulerType: 'constant',
    maxGradNorm: 1,
    shuffle: false,
    gradientCheckpointing: false,
    activationDtype,
  },
  onEvent: (event) => {
    if (event.type !== 'step-end') return;
    const cpu = process.cpuUsage();
    const cpuMs = lastCpu ? (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000 : null;
    lastCpu = cpu;
    if (event.step <= warmup) {
      if (event.step > 1 || warmup === 1) plainMs.push(event.stepMs);
      if (event.step > 1 && cpuMs !== null) plainCpuMs.push(cpuMs);
      if (event.step === warmup) device.startProfile();
    } else {
      profiledStepMs = event.stepMs;
      profiled = device.stopProfile();
    }
  },
});
const profile = await profiled;
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? null;
const plainStepMs = median(plainMs);
const plainCpuStepMs = median(plainCpuMs);
const tokens = shape.batch * shape.seq;
const summary = {
  shape: shapeName,
  batch: shape.batch,
  seq: shape.seq,
  adapter: `${device.info.vendor} ${device.info.architecture} ${device.info.device ?? ''}`.trim(),
  lp_num_threads: process.env.LP_NUM_THREADS ?? null,
  plain_step_ms: plainStepMs,
  plain_tokens_per_s: Math.round(tokens / (plainStepMs / 1000)),
  plain_step_cpu_ms: plainCpuStepMs,
  profiled_step_ms: profiledStepMs,
  ...profile,
};
if (args.includes('--json')) {
  console.log(JSON.stringify(summary));
} else {
  console.log(
    `${shapeName} ${shape.batch} x ${shape.seq} on ${summary.adapter}: plain step ${plainStepMs.toFixed(1)} ms (${summary.plain_tokens_per_s} tok/s, CPU ${plainCpuStepMs?.toFixed(0) ?? 'n/a'} ms), profiled step ${profiledStepMs.toFixed(1)} ms`,
  );
  console.log(formatKernelProfile(profile));
  if (args.includes('--keys')) console.log(`\n${formatKernelProfile(profile, profile.keys)}`);
}
model.dispose();
device.destroy();
