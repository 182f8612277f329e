// Where every millisecond of one prefill's wall time goes, call after call: host events (call
// start, each submit, the read-back's mapAsync and its resolution, Dawn's polls, GC pauses) placed
// on the same clock as the GPU's per-dispatch timestamps (lavapipe's timestamps are CLOCK_MONOTONIC,
// process.hrtime's clock). Same model and prompt as the prefill case of versus-transformers.mjs.
//
//   pnpm --filter @webtune/train build && node --expose-gc bench/prefill-timeline.mjs
//     [--shape=stories260K|stories15M] [--calls=N] [--prompt=N] [--json]
//     [--modes=sleep-blind,sleep] [--no-profile]
//
// --modes: Dawn polling modes (installDawnPolling) taking turns call by call, one row each.
// --no-profile: plain calls only (the wall, host, late and polls columns stay; the GPU ones go).
//
// Each call is profiled (every dispatch in its own timestamped pass, which adds a little per
// dispatch). Columns per call, in ms:
//   wall       the call's prefill time (timings.prefillMs)
//   host       call start -> first submit (cache, decoder, embed and layer 0 encoded)
//   launch     first submit -> first kernel begins (submit latency)
//   kernels    sum of the dispatches' GPU times
//   gaps       sum of the gaps between consecutive kernels (inside a submit and between submits)
//   late       last kernel ends -> the read-back's mapAsync resolves (the copy to staging,
//              Dawn's fence check, the polling's lateness)
//   lastPoll   the poll interval that saw the result (upper bound of the polling's lateness)
//   after      mapAsync resolved -> the call returns (unmap, ids, disposal)
//   polls      Dawn polls during the call; gc: GC pause ms during the call
import { PerformanceObserver } from 'node:perf_hooks';
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { createDevice, dawnPollingStats, installDawnPolling } from '@webtune/tensors';
import { benchPrompt, benchShape, generationConfig } from './step-shapes.mjs';

const args = process.argv.slice(2);
const { option, shapeName, shape } = benchShape('prefill-timeline', 'stories260K', args);
const calls = Number(option('calls') ?? 8);
const prompt = Number(option('prompt') ?? 128);
if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(prompt) || prompt < 1) {
  console.error('prefill-timeline: --calls and --prompt must be integers >= 1');
  process.exit(2);
}

const now = () => Number(process.hrtime.bigint()) / 1e6;
// performance.now() (GC entries) to the hrtime clock.
const perfOffset = now() - performance.now();

const device = await createDevice({ dawnOptions: ['disable-dawn-features=timestamp_quantization'] });
const gpu = device.gpu;
let events = [];
const submit = gpu.queue.submit.bind(gpu.queue);
gpu.queue.submit = (...a) => {
  events.push({ kind: 'submit', at: now() });
  return submit(...a);
};
const bufferProto = Object.getPrototypeOf(gpu.createBuffer({ size: 16, usage: 8 }));
const mapAsync = bufferProto.mapAsync;
bufferProto.mapAsync = function (...a) {
  const event = { kind: 'map', at: now(), size: this.size, resolved: 0 };
  events.push(event);
  return mapAsync.apply(this, a).then((value) => {
    event.resolved = now();
    return value;
  });
};
// Dawn's polls: when each native callback is scheduled (after the polling wrapper's sleep).
const pollingSetImmediate = globalThis.setImmediate;
globalThis.setImmediate = Object.assign(function setImmediate(callback, ...rest) {
  const result = pollingSetImmediate(callback, ...rest);
  if (
    typeof callback === 'function' &&
    Function.prototype.toString.call(callback).endsWith('{ [native code] }')
  )
    events.push({ kind: 'poll', at: now() });
  return result;
}, pollingSetImmediate);
new PerformanceObserver((list) => {
  for (const entry of list.getEntries())
    events.push({ kind: 'gc', at: entry.startTime + perfOffset, ms: entry.duration });
}).observe({ entryTypes: ['gc'] });

const config = generationConfig(createModelConfig, shape);
const model = initializeModel(new CausalLM(device, config), { seed: 0 });
await device.sync();
const ids = benchPrompt(config, prompt);
const options = { maxNewTokens: 1, stopTokens: [] };
// Warm-up (pipelines, buffers, JIT).
for (let i = 0; i < 2; i++) await generateWithTimings(model, null, [ids], options);

const modes = (option('modes') ?? 'sleep').split(',');
const profiled = !args.includes('--no-profile');
const rows = [];
for (let call = 1; call <= calls; call++) {
  for (const mode of modes) {
    installDawnPolling(mode);
    rows.push(await timedCall(call, mode));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

async function timedCall(call, mode) {
  events = [];
  const polls = dawnPollingStats();
  if (profiled) device.startProfile();
  const start = now();
  const { timings } = await generateWithTimings(model, null, [ids], options);
  const end = now();
  const profile = profiled ? await device.stopProfile() : null;
  const spans = profile?.spans ?? [];
  const submits = events.filter((e) => e.kind === 'submit' && e.at <= end).map((e) => e.at);
  // The read-back: the call's last mapAsync to resolve before it returns (the profiler maps one
  // buffer per submit too; the last submit's resolves in the same poll).
  const maps = events.filter((e) => e.kind === 'map' && e.resolved > 0 && e.resolved <= end);
  const readback = maps.reduce((a, b) => (b.resolved > a.resolved ? b : a));
  const gpuEnd = spans[spans.length - 1]?.end ?? Number.NaN;
  let gaps = 0;
  for (let i = 1; i < spans.length; i++) gaps += Math.max(0, spans[i].begin - spans[i - 1].end);
  const pollTimes = events.filter((e) => e.kind === 'poll' && e.at <= readback.resolved).map((e) => e.at);
  const seen = pollTimes.findLast((t) => t <= readback.resolved) ?? readback.resolved;
  const before = pollTimes.findLast((t) => t < seen) ?? seen;
  if (args.includes('--trace'))
    console.error(
      `${mode} call ${call}: gpu ${(spans[0]?.begin - start).toFixed(2)}..${(gpuEnd - start).toFixed(2)}, map ${(readback.at - start).toFixed(2)} -> ${(readback.resolved - start).toFixed(2)}; polls at`,
      pollTimes.map((t) => (t - start).toFixed(2)).join(' '),
    );
  const kernels = spans.reduce((total, span) => total + (span.end - span.begin), 0);
  return {
    call,
    mode,
    wall: timings.prefillMs,
    host: submits[0] - start,
    launch: (spans[0]?.begin ?? Number.NaN) - submits[0],
    kernels,
    gaps,
    late: readback.resolved - gpuEnd,
    lastPoll: seen - before,
    after: end - readback.resolved,
    polls: dawnPollingStats().polls - polls.polls,
    slept: dawnPollingStats().sleptMs - polls.sleptMs,
    gc: events.filter((e) => e.kind === 'gc' && e.at >= start && e.at <= end).reduce((t, e) => t + e.ms, 0),
    submits: submits.length,
    dispatches: spans.length,
  };
}
const round = (value) => Math.round(value * 100) / 100;
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
if (args.includes('--json')) console.log(JSON.stringify({ shape: shapeName, prompt, rows }));
else {
  console.log(`${shapeName}, prompt ${prompt}, ${device.info.vendor} ${device.info.architecture}`);
  const columns = Object.keys(rows[0]);
  const cell = (value) => (typeof value === 'number' ? round(value) : value);
  console.log(columns.join('\t'));
  for (const row of rows) console.log(columns.map((column) => cell(row[column])).join('\t'));
  for (const mode of modes) {
    const own = rows.filter((row) => row.mode === mode);
    const of = (c) => own.map((r) => r[c]);
    const summary = (label, f) =>
      columns.map((c) => (c === 'call' ? label : c === 'mode' ? mode : round(f(of(c))))).join('\t');
    console.log(summary('median', median));
    console.log(summary('spread', (list) => Math.max(...list) - Math.min(...list)));
  }
}
model.dispose();
device.destroy();
