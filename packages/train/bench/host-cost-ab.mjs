// Two builds' host cost alternated in one process, on Dawn's null backend (the cases of
// bench/host-cost.mjs at fixed layer counts, no extrapolation): each round measures build A,
// then build B, with the same load; each figure is the median of its rounds. Both builds' modules
// load side by side (each root's own packages/*/dist), on devices of their own.
// A build is a checkout's root with its packages built; to compare against the build before a
// change, copy the packages' dist/, package.json and node_modules/ (and node_modules at the root)
// to a folder first.
//
//   node --expose-gc bench/host-cost-ab.mjs --a=/tmp/base [--b=.] [--rounds=7] [--size=0.6B]
//     [--layers=6] [--step-layers=3] [--class=discrete] [--qk-norm=on|off] [--repeats=9]
//
// One process per build measured the same builds with rounds 2x apart (the JIT and the memory
// layout differ per process); alternated in one process they agree within a few percent.
// stdout: one JSON row per case with both medians, B / A and every round's figures; progress on stderr.
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { measureAtLayers, zeroReadBacks } from './host-cost-cases.mjs';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
if (!option('a')) {
  console.error('host-cost-ab: give --a=<root of the build to compare against>');
  process.exit(2);
}
const rounds = Number(option('rounds') ?? 7);
const size = option('size') ?? '0.6B';
const layers = Number(option('layers') ?? 6);
const stepLayers = Number(option('step-layers') ?? 3);
const adapterClass = option('class') ?? 'discrete';
const measure = {
  vocab: 8192,
  baseFormat: 'q4_0',
  repeats: Number(option('repeats') ?? 9),
  warmup: 10,
  prompt: 128,
  newTokens: 64,
  seq: 512,
  qkNorm: (option('qk-norm') ?? 'on') !== 'off',
};
const stepTuning = adapterClass === 'software' ? {} : { attentionKernel: 'lanes' };

async function loadBuild(name, root) {
  const dist = (pkg) => pathToFileURL(join(resolve(root), 'packages', pkg, 'dist', 'index.js')).href;
  const [nn, peft, tensors, train] = await Promise.all(
    ['nn', 'peft', 'tensors', 'train'].map((pkg) => import(dist(pkg))),
  );
  const dawnOptions = ['backend=null'];
  const generation = await tensors.createDevice({ dawnOptions, adapterClass });
  const step = await tensors.createDevice({ dawnOptions, adapterClass, tuning: stepTuning });
  return { name, root, libs: { nn, peft, train }, generation, step, figures: {} };
}

const builds = [await loadBuild('A', option('a')), await loadBuild('B', option('b') ?? '.')];
const restore = zeroReadBacks(builds[0].generation);
const loads = [loadavg()[0]];
const record = (build, name, value, dispatches) => {
  build.figures[name] ??= { values: [], dispatches };
  build.figures[name].values.push(value);
};
for (let round = 0; round < rounds; round++) {
  for (const build of builds) {
    const gen = await measureAtLayers(build.generation, build.libs, {
      ...measure,
      size,
      layers,
      cases: ['prefill', 'decode'],
    });
    const step = await measureAtLayers(build.step, build.libs, {
      ...measure,
      size,
      layers: stepLayers,
      cases: ['lora-sft'],
    });
    record(build, `host prefill Qwen3-${size} at ${layers} layers`, gen.prefill.ms, gen.prefill.dispatches);
    record(build, `host decode Qwen3-${size} at ${layers} layers`, gen.decode.ms, gen.decode.dispatches);
    record(
      build,
      `host lora-sft Qwen3-${size} at ${stepLayers} layers`,
      step['lora-sft'].ms,
      step['lora-sft'].dispatches,
    );
    loads.push(loadavg()[0]);
    console.error(
      `round ${round + 1} ${build.name}: prefill ${gen.prefill.ms.toFixed(2)}, decode ${gen.decode.ms.toFixed(3)}, step ${step['lora-sft'].ms.toFixed(1)} CPU ms (load ${loads.at(-1).toFixed(2)})`,
    );
  }
}
restore();
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const units = {
  prefill: 'host CPU ms per prefill',
  decode: 'host CPU ms per token',
  'lora-sft': 'host CPU ms per step',
};
for (const name of Object.keys(builds[0].figures)) {
  const [a, b] = builds.map((build) => build.figures[name]);
  const ma = median(a.values);
  const mb = median(b.values);
  console.log(
    JSON.stringify({
      case: name,
      unit: units[name.split(' ')[1]],
      A: Number(ma.toPrecision(4)),
      B: Number(mb.toPrecision(4)),
      b_over_a: Number((mb / ma).toFixed(3)),
      dispatches: { A: a.dispatches, B: b.dispatches },
      rounds: {
        A: a.values.map((v) => Number(v.toPrecision(4))),
        B: b.values.map((v) => Number(v.toPrecision(4))),
      },
      roots: { A: builds[0].root, B: builds[1].root },
      adapter_class: adapterClass,
      qk_norm: measure.qkNorm,
      load: [Math.min(...loads), Math.max(...loads)].map((v) => Number(v.toFixed(2))),
    }),
  );
}
for (const build of builds) {
  build.generation.destroy();
  build.step.destroy();
}
