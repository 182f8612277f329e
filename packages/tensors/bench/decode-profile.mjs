// Where a fused decode step's time goes: each decode kernel alone, repeated in one submit, for the
// stories260K and stories15M shapes at a cache position. node bench/decode-profile.mjs [--shape=...]
const args = process.argv.slice(2);
const option = (n) => args.findLast((a) => a.startsWith(`--${n}=`))?.slice(n.length + 3);
// --lib=<path to a built @webtune/tensors index.js> compares another build (before/after).
const { createDevice, decodeArgmax, decodeAttention, decodeEmbed, decodeMatvec } = await import(
  option('lib') ?? '@webtune/tensors'
);

const SHAPES = {
  stories260K: { hidden: 64, inter: 172, heads: 8, kvHeads: 4, vocab: 512, layers: 5 },
  stories15M: { hidden: 288, inter: 768, heads: 6, kvHeads: 6, vocab: 32000, layers: 6 },
};
const device = await createDevice();
const rand = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.1);
const t = (shape) => device.fromArray(rand(shape.reduce((a, b) => a * b, 1)), shape, 'f32').keep();
const REPS = Number(option('reps') ?? 100);
const SLOT = Number(option('slot') ?? 192);
for (const [name, s] of Object.entries(SHAPES)) {
  if (option('shape') && option('shape') !== name) continue;
  const D = s.hidden / s.heads;
  const width = (s.heads + 2 * s.kvHeads) * D;
  const x = t([1, s.hidden]);
  const g = t([s.hidden]);
  const q = t([s.heads * D, s.hidden]);
  const k = t([s.kvHeads * D, s.hidden]);
  const v = t([s.kvHeads * D, s.hidden]);
  const o = t([s.hidden, s.heads * D]);
  const gate = t([s.inter, s.hidden]);
  const up = t([s.inter, s.hidden]);
  const down = t([s.hidden, s.inter]);
  const head = t([s.vocab, s.hidden]);
  const qkv = t([1, width]);
  const att = t([1, s.heads * D]);
  const act = t([1, s.inter]);
  const logits = t([1, s.vocab]);
  const cap = 256;
  const keys = t([1, cap, s.kvHeads, D]);
  const values = t([1, cap, s.kvHeads, D]);
  const cos = t([cap, D / 2]);
  const sin = t([cap, D / 2]);
  const padding = device.fromArray([0], [1], 'u32').keep();
  const ids = device.fromArray([3], [1], 'i32').keep();
  const tokens = device.empty([REPS], 'i32').keep();
  const eps = 1e-5;
  const kernels = {
    embed: () => decodeEmbed(device, head, ids, x),
    qkv: () =>
      decodeMatvec(device, { x, weights: [q, k, v], norm: { weight: g, eps }, epilogue: 'store', out: qkv }),
    attention: () =>
      decodeAttention(device, {
        qkv,
        cos,
        sin,
        padding,
        keys,
        values,
        out: att,
        heads: s.heads,
        kvHeads: s.kvHeads,
        slot: SLOT,
        scale: 0.1,
      }),
    o: () => decodeMatvec(device, { x: att, weights: [o], epilogue: 'residual', out: x }),
    gateUp: () =>
      decodeMatvec(device, {
        x,
        weights: [gate, up],
        norm: { weight: g, eps },
        epilogue: 'swiglu',
        out: act,
      }),
    down: () => decodeMatvec(device, { x: act, weights: [down], epilogue: 'residual', out: x }),
    head: () =>
      decodeMatvec(device, { x, weights: [head], norm: { weight: g, eps }, epilogue: 'store', out: logits }),
    argmax: (i) => decodeArgmax(device, logits, ids, tokens, i % REPS),
  };
  // Process CPU time (every lavapipe thread) per call, in µs: other jobs on the shared cores
  // disturb it far less than the wall clock. Best of 3 batches.
  const timeOf = async (fn) => {
    for (let i = 0; i < 5; i++) fn(i);
    await device.sync();
    let best = Infinity;
    for (let batch = 0; batch < 3; batch++) {
      const start = process.cpuUsage();
      for (let i = 0; i < REPS; i++) fn(i);
      await device.sync();
      const used = process.cpuUsage(start);
      best = Math.min(best, (used.user + used.system) / REPS);
    }
    return best;
  };
  const row = {};
  for (const [k2, fn] of Object.entries(kernels)) row[k2] = Math.round(await timeOf(fn));
  // A whole step: embed, per layer qkv attention o gateUp down, head, argmax.
  const step = (i) => {
    kernels.embed();
    for (let l = 0; l < s.layers; l++) {
      kernels.qkv();
      kernels.attention();
      kernels.o();
      kernels.gateUp();
      kernels.down();
    }
    kernels.head();
    kernels.argmax(i);
  };
  const stepUs = await timeOf(step);
  console.log(
    JSON.stringify({
      shape: name,
      slot: SLOT,
      cpu_us_per_dispatch: row,
      cpu_us_per_step: Math.round(stepUs),
      tok_s_per_cpu: Math.round(1e6 / stepUs),
    }),
  );
}
device.destroy();
