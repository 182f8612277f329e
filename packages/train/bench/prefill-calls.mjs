// Per-call breakdown of repeated prefills in one fresh process (what versus-transformers times:
// calls 2..N after one warm-up): for each call, its prefill time, and what the call created or
// waited for on the host: pipelines, bind groups, buffers (and their bytes), command encoders,
// host time inside queue.writeBuffer / queue.submit / mapAsync waits, and GC pauses.
//
//   pnpm --filter @webtune/train build && node --expose-gc bench/prefill-calls.mjs
//     [--shape=stories260K|stories15M] [--calls=N] [--prompt=N] [--json]
//     [--slow [--slow-ms=2]] [--dawn=<dawn option>,...] [--between=sleep|gc|write]
//
// --slow: print each timed GPU call over --slow-ms (with its size and CLOCK_MONOTONIC end, to find
// it in `perf record -k CLOCK_MONOTONIC`) and each GC pause over 2 ms. --dawn: createDevice's
// dawnOptions (e.g. disable-dawn-features=disable_lazy_clear_for_mapped_at_creation_buffer to
// see the zero-filled staging rings again). --between: an experiment between calls (a 200 ms
// sleep, a forced GC, or a tiny write and sync) to see whether a cost is time-, GC- or
// write-bound. Columns: per call, counts of each wrapped GPU call and their host ms;
// toSubmitMs is the host time from the call's start to its first submit; gcMs / majorGcMs the
// GC pauses (PerformanceObserver). Findings: docs/architecture/decode-path.md ("Calls after the
// first").
import { PerformanceObserver } from 'node:perf_hooks';
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice } from '@webtune/tensors';
import { benchPrompt, benchShape, generationConfig } from './step-shapes.mjs';

const args = process.argv.slice(2);
const { option, shapeName, shape } = benchShape('prefill-calls', 'stories260K', args);
const calls = Number(option('calls') ?? 8);
const prompt = Number(option('prompt') ?? 128);
if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(prompt) || prompt < 1) {
  console.error('prefill-calls: --calls and --prompt must be integers >= 1');
  process.exit(2);
}

const device = await createDevice(option('dawn') ? { dawnOptions: option('dawn').split(',') } : {});
const gpu = device.gpu;
const counts = {};
const reset = () => {
  for (const key of Object.keys(counts)) counts[key] = 0;
};
const count = (name, amount = 1) => {
  counts[name] = (counts[name] ?? 0) + amount;
};
/** Wraps obj[name] so each call is counted (and timed when `timed`). */
function wrap(obj, name, label, { timed = false, bytes = null } = {}) {
  const original = obj[name].bind(obj);
  obj[name] = (...a) => {
    count(label);
    if (bytes) count(`${label}Bytes`, bytes(a));
    if (!timed) return original(...a);
    const t = performance.now();
    const result = original(...a);
    if (result && typeof result.then === 'function') {
      return result.finally(() => count(`${label}Ms`, performance.now() - t));
    }
    const spent = performance.now() - t;
    count(`${label}Ms`, spent);
    if (spent > Number(option('slow-ms') ?? 2) && args.includes('--slow'))
      console.error(
        `slow ${label}: ${spent.toFixed(1)} ms ending at ${(Number(process.hrtime.bigint()) / 1e9).toFixed(4)}`,
        bytes ? bytes(a) : '',
      );
    return result;
  };
}
wrap(gpu, 'createBuffer', 'buffers', { bytes: (a) => a[0].size });
wrap(gpu, 'createBindGroup', 'bindGroups', { timed: true });
wrap(gpu, 'createComputePipeline', 'pipelines', { timed: true });
wrap(gpu, 'createCommandEncoder', 'encoders');
wrap(gpu.queue, 'writeBuffer', 'writeBuffer', {
  timed: true,
  bytes: (a) => a[4] ?? a[2].byteLength,
});
wrap(gpu.queue, 'submit', 'submit', { timed: true });
// Host time from the call's start to its first submit (cache, decoder and every dispatch encoded).
let callStart = 0;
const submit = gpu.queue.submit;
gpu.queue.submit = (...a) => {
  if (!counts.toSubmitMs) count('toSubmitMs', performance.now() - callStart);
  return submit(...a);
};
const bufferProto = Object.getPrototypeOf(gpu.createBuffer({ size: 16, usage: 8 }));
const mapAsync = bufferProto.mapAsync;
bufferProto.mapAsync = function (...a) {
  count('mapAsync');
  const t = performance.now();
  return mapAsync.apply(this, a).finally(() => count('mapAsyncMs', performance.now() - t));
};
const destroy = bufferProto.destroy;
bufferProto.destroy = function () {
  count('destroyed');
  return destroy.call(this);
};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    count('gcMs', entry.duration);
    // detail.kind: 1 minor (scavenge), 2 major (mark-compact), 4 incremental, 8 weak callbacks.
    if (entry.detail?.kind === 2) count('majorGcMs', entry.duration);
    if (args.includes('--slow') && entry.duration > 2)
      console.error(
        `gc kind ${entry.detail?.kind} ${entry.duration.toFixed(1)} ms flags ${entry.detail?.flags}`,
      );
  }
}).observe({ entryTypes: ['gc'] });

const config = generationConfig(createModelConfig, shape);
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
await device.sync();
const ids = benchPrompt(config, prompt);
const rows = [];
for (let call = 1; call <= calls; call++) {
  reset();
  if (args.includes('--slow')) console.error(`-- call ${call}`);
  const cpu = process.cpuUsage();
  callStart = performance.now();
  const { timings } = await generateWithTimings(model, null, [ids], { maxNewTokens: 1, stopTokens: [] });
  const used = process.cpuUsage(cpu);
  const row = { call, prefillMs: round(timings.prefillMs), cpuMs: round((used.user + used.system) / 1000) };
  for (const [key, value] of Object.entries(counts)) row[key] = round(value);
  rows.push(row);
  // Let timers and Dawn's deferred work run between calls, as the bench's loop does.
  await new Promise((resolve) => setTimeout(resolve, 0));
  await between(option('between'));
}
if (args.includes('--json')) console.log(JSON.stringify({ shape: shapeName, prompt, rows }));
else {
  console.log(`${shapeName}, prompt ${prompt}, ${device.info.vendor} ${device.info.architecture}`);
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  console.log(columns.join('\t'));
  for (const row of rows) console.log(columns.map((column) => row[column] ?? 0).join('\t'));
}
model.dispose();
device.destroy();

/** Experiments between calls: sleep, a tiny write, gc. */
async function between(what) {
  if (!what) return;
  const t = performance.now();
  if (what === 'sleep') await new Promise((resolve) => setTimeout(resolve, 200));
  if (what === 'gc') globalThis.gc?.();
  if (what === 'write') {
    const b = gpu.createBuffer({ size: 256, usage: 8 | 0x80 });
    gpu.queue.writeBuffer(b, 0, new Uint32Array([1]));
    await device.sync();
  }
  console.error(`between (${what}): ${(performance.now() - t).toFixed(1)} ms`);
}

function round(value) {
  return Math.round(value * 100) / 100;
}
