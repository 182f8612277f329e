// What Dawn's busy wait costs: one compute job of a chosen size, waited for with Dawn's own loop
// ('spin') and with webtune's sleeping polls ('sleep'), alternating in one process. Prints the
// median wall time per job, the process CPU time and the polls per mode.
//
//   pnpm --filter @webtune/tensors build && node bench/dawn-polling.mjs [--iterations=400] [--jobs=10]
//
// --iterations sets the work per invocation (400: ~145 ms on lavapipe with 2 threads; 4: ~3.5 ms).
import { createDevice, dawnPollingStats, installDawnPolling } from '@webtune/tensors';

const args = process.argv.slice(2);
const option = (name, fallback) =>
  Number(args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const iterations = option('iterations', 400);
const jobs = option('jobs', 10);

const device = await createDevice();
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

async function job() {
  const encoder = gpu.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(invocations / 64);
  pass.end();
  encoder.copyBufferToBuffer(buffer, 0, readback, 0, 16);
  gpu.queue.submit([encoder.finish()]);
  const alive = setInterval(() => {}, 1000);
  await readback.mapAsync(1 /* GPUMapMode.READ */);
  readback.unmap();
  clearInterval(alive);
}

const results = { spin: { walls: [], cpuMs: 0, polls: 0 }, sleep: { walls: [], cpuMs: 0, polls: 0 } };
for (const mode of ['spin', 'sleep']) {
  installDawnPolling(mode);
  await job(); // compile and warm up
}
for (let round = 0; round < jobs; round++) {
  for (const mode of ['spin', 'sleep']) {
    installDawnPolling(mode);
    const polls = dawnPollingStats().polls;
    const cpu = process.cpuUsage();
    const start = performance.now();
    await job();
    results[mode].walls.push(performance.now() - start);
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
    `${mode}: median ${median(r.walls).toFixed(2)} ms per job, CPU ${(r.cpuMs / jobs).toFixed(1)} ms per job, ${Math.round(r.polls / jobs)} polls per job`,
  );
}
process.exit(0);
