// GPU time of the tiled prefill's kernels outside the products: the embedding gather
// (decodeEmbed), rotary + KV append (prefillAppend) and the prompt's causal attention (the
// attention op over the cache), at the bench models' shapes, from timestamp-query.
//
//   pnpm --filter @webtune/tensors build && node bench/prefill-attention.mjs [--repeats=N]
//     [--shapes=stories260K,stories15M] [--prompts=128,512] [--compare=/path/to/other/dist/index.js]
//     [--kernels=embed,append,attention] [--rounds=N] [--chunks=8,16]
//
// --compare: a second build of @webtune/tensors (e.g. a copy of an older dist) run alternately
// with this one on its own device, round by round, so both see the same load.
import * as current from '@webtune/tensors';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const repeats = Number(option('repeats') ?? 10);
const rounds = Number(option('rounds') ?? 3);
const prompts = (option('prompts') ?? '128').split(',').map(Number);
const SHAPES = {
  stories260K: { hidden: 64, heads: 8, kvHeads: 4, headDim: 8, vocab: 512 },
  stories15M: { hidden: 288, heads: 6, kvHeads: 6, headDim: 48, vocab: 32000 },
};
const shapes = (option('shapes') ?? 'stories260K,stories15M').split(',');
// --kernels=embed,append: leave the attention out (long prompts at the stories15M shape).
const kernels = new Set((option('kernels') ?? 'embed,append,attention').split(','));
const builds = [{ name: 'this', lib: current }];
if (option('compare')) builds.push({ name: 'compare', lib: await import(option('compare')) });

function random(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

async function setUp(build, tuning = {}) {
  const device = await build.lib.createDevice({
    dawnOptions: ['disable-dawn-features=timestamp_quantization'],
    tuning,
  });
  return { ...build, device };
}

async function measure({ lib, device }, shapeName, steps) {
  const { hidden, heads, kvHeads, headDim, vocab } = SHAPES[shapeName];
  const width = (heads + 2 * kvHeads) * headDim;
  const capacity = steps;
  const half = headDim / 2;
  const positions = Math.max(512, steps);
  const table = device.fromArray(random(vocab * hidden, 1), [vocab, hidden], 'f32');
  const ids = device.fromArray(
    Int32Array.from({ length: steps }, (_, i) => (i * 7919) % vocab),
    [steps],
    'i32',
  );
  const hiddenOut = device.empty([steps, hidden], 'f32');
  const qkv = device.fromArray(random(steps * width, 2), [steps, width], 'f32');
  const angles = new Float32Array(positions * half).map(
    (_, i) => Math.floor(i / half) * 10 ** (-(i % half) / half),
  );
  const cos = device.fromArray(angles.map(Math.cos), [positions, half], 'f32');
  const sin = device.fromArray(angles.map(Math.sin), [positions, half], 'f32');
  const padding = device.fromArray(new Uint32Array([0]), [1], 'u32');
  const keys = device.empty([1, capacity, kvHeads, headDim], 'f32');
  const values = device.empty([1, capacity, kvHeads, headDim], 'f32');
  const queries = device.empty([steps, heads * headDim], 'f32');
  const inputs = { qkv, cos, sin, padding, qkNorm: null, heads, kvHeads, start: 0, steps };
  const once = () => {
    if (kernels.has('embed')) lib.decodeEmbed(device, table, ids, hiddenOut);
    if (kernels.has('append')) lib.prefillAppend(device, { ...inputs, keys, values, queries });
    if (!kernels.has('attention')) return;
    const { output, logsumexp } = lib.attention(queries.reshape([1, steps, heads, headDim]), keys, values, {
      causal: true,
      scale: 1 / Math.sqrt(headDim),
      queryOffset: 0,
    });
    output.dispose();
    logsumexp.dispose();
    if (lib.promptAttention) {
      lib
        .promptAttention(queries.reshape([1, steps, heads, headDim]), keys, values, {
          causal: true,
          scale: 1 / Math.sqrt(headDim),
          queryOffset: 0,
        })
        .dispose();
    }
  };
  once();
  await device.sync();
  device.startProfile();
  for (let r = 0; r < repeats; r++) once();
  const profile = await device.stopProfile();
  for (const t of [table, ids, hiddenOut, qkv, cos, sin, padding, keys, values, queries]) t.dispose();
  return profile.keys.map((row) => ({ name: row.name, us: (row.totalMs * 1000) / row.dispatches }));
}

const devices = [];
for (const build of builds) devices.push(await setUp(build));
// --chunks=4,16: more devices of this build with promptAttention's other chunk sizes.
for (const chunk of (option('chunks') ?? '').split(',').filter(Boolean).map(Number)) {
  devices.push(await setUp({ name: `chunk ${chunk}`, lib: current }, { promptAttentionChunk: chunk }));
}

const { loadavg } = await import('node:os');
for (let round = 0; round < rounds; round++) {
  for (const shapeName of shapes) {
    for (const steps of shapeName === 'stories15M' ? prompts : prompts.filter((p) => p <= 512)) {
      for (const build of devices) {
        const rows = await measure(build, shapeName, steps);
        const line = rows.map(
          (row) => `${row.name.replace(/^decode:|^attention:/, '')} ${row.us.toFixed(0)}`,
        );
        console.log(
          `round ${round} ${shapeName} M=${steps} ${build.name.padEnd(7)} load ${loadavg()[0].toFixed(2)}: ${line.join(' | ')}`,
        );
      }
    }
  }
}
