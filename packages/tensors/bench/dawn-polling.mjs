// What Dawn's busy wait costs: one compute job of a chosen size, waited for with Dawn's own loop
// ('spin'), with webtune's sleeping polls by the wait's age ('sleep-blind') and with the sleeping
// polls that expect the end the same wait had before ('sleep'), alternating in one process. Prints
// the median wall time per job, the process CPU time and the polls per mode.
//
//   pnpm --filter @webtune/tensors build && node bench/dawn-polling.mjs [--iterations=400] [--jobs=10]
//     [--modes=spin,sleep-blind,sleep]
//
// --iterations sets the work per invocation (400: ~145 ms on lavapipe with 2 threads; 4: ~3.5 ms).
import { createDevice, dawnPollingStats, expectDawnWait, installDawnPolling } from '@webtune/tensors';

const args = process.argv.slice(2);
const option = (name, fallback) =>
  Number(args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const iterations = option('iterations', 400);
const jobs = option('jobs', 10);
// --schedule=maxMs=0.25,guardFraction=0.2: changes to the 'sleep' mode's schedule (DEFAULT_POLL_SCHEDULE).
const schedule = Object.fromEntries(
  (args.findLast((a) => a.startsWith('--schedule='))?.slice(11) ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.split('=')[0], Number(pair.split('=')[1])]),
);
const modes = (args.findLast((a) => a.startsWith('--modes='))?.slice(8) ?? 'spin,sleep-blind,sleep').split(
  ',',
);

const device = await createDevice({ dawnOptions: ['disable-dawn-features=timestamp_quantization'] });
const gpu = device.gpu;
const invocations = 1 << 20;
const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  var x = a[g.x];
  for (var i = 0u; i < ${iterations}u; i++) { x = fract(x * 1.0000001 + 0.5) * 3.0; }
  a[g.x] = x;
}`;
const pipeline = gpu.createComputePipeline({
  layout: 'auto',
  compute: { module: gpu.createShaderModule({ code }), entryPoint: 'main' },
});
const buffer = gpu.createBuffer({
  size: invocations * 4,
  usage: 0x80 | 0x04 /* STORAGE | COPY_SRC */,
});
const bindGroup = gpu.createBindGroup({
  layout: pipeline.getBindGroupLayout(0),
  entries: [{ binding: 0, resource: { buffer } }],
});
const readback = gpu.createBuffer({ size: 16, usage: 0x01 | 0x08 /* MAP_READ | COPY_DST */ });
// Where the adapter has timestamp-query: the job's end on the GPU's clock (lavapipe's is
// CLOCK_MONOTONIC, process.hrtime's), so each wait's lateness is the read-back's resolution minus it.
const timed = gpu.features.has('timestamp-query');
const querySet = timed ? gpu.createQuerySet({ type: 'timestamp', count: 2 }) : null;
const resolved = timed
  ? gpu.createBuffer({ size: 16, usage: 0x200 | 0x04 /* QUERY_RESOLVE | COPY_SRC */ })
  : null;
let lateMs = Number.NaN;

async function job() {
  const encoder = gpu.createCommandEncoder();
  const pass = encoder.beginComputePass(
    querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
  );
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(invocations / 64);
  pass.end();
  encoder.copyBufferToBuffer(buffer, 0, readback, 0, 8);
  if (querySet) {
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 8, readback, 8, 8);
  }
  gpu.queue.submit([encoder.finish()]);
  const alive = setInterval(() => {}, 1000);
  // Named as webtune's command recorder names its read-backs ('sleep' uses it; the others ignore it).
  const waited = expectDawnWait(`bench:${iterations}`);
  await readback.mapAsync(1 /* GPUMapMode.READ */);
  const at = process.hrtime.bigint();
  waited();
  if (querySet) lateMs = Number(at - new BigUint64Array(readback.getMappedRange(8, 8))[0]) / 1e6;
  readback.unmap();
  clearInterval(alive);
}

const results = Object.fromEntries(modes.map((mode) => [mode, { walls: [], lates: [], cpuMs: 0, polls: 0 }]));
for (const mode of modes) {
  installDawnPolling(mode, schedule);
  await job(); // compile and warm up
}
for (let round = 0; round < jobs; round++) {
  for (const mode of modes) {
    installDawnPolling(mode, schedule);
    const polls = dawnPollingStats().polls;
    const cpu = process.cpuUsage();
    const start = performance.now();
    await job();
    results[mode].walls.push(performance.now() - start);
    results[mode].lates.push(lateMs);
    const used = process.cpuUsage(cpu);
    results[mode].cpuMs += (used.user + used.system) / 1000;
    results[mode].polls += dawnPollingStats().polls - polls;
  }
}
installDawnPolling('sleep');
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(
  `adapter: ${device.info.description || device.info.device} (${device.info.adapterClass}); ${iterations} iterations, ${jobs} jobs per mode`,
);
for (const [mode, r] of Object.entries(results)) {
  console.log(
    `${mode}: median ${median(r.walls).toFixed(2)} ms per job, late ${median(r.lates).toFixed(2)} ms (median; max ${Math.max(...r.lates).toFixed(2)}), CPU ${(r.cpuMs / jobs).toFixed(1)} ms per job, ${Math.round(r.polls / jobs)} polls per job`,
  );
}
process.exit(0);
