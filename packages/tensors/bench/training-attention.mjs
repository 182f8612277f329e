// GPU time of the training step's attention kernels (forward with log-sum-exp, then the backward's
// D, dq and dk/dv) at a shape of the step bench, from timestamp-query, on devices with different
// tunings alternated round by round in one process (same load for all).
//
//   pnpm --filter @webtune/tensors build && node bench/training-attention.mjs [--rounds=N]
//     [--repeats=N] [--shape=batch,seq,heads,kvHeads,headDim] [--tunings=<JSON>;<JSON>;...]
//
// Default: stories260K's step (8 x 256, 8 heads, 4 kv heads, head dim 8, causal), this device's
// tuning against {"promptAttentionChunk":0} (the key-lanes forward and the per-row backward).
import { loadavg } from 'node:os';
import { attention, attentionBackward, createDevice } from '@webtune/tensors';

const args = process.argv.slice(2);
const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const rounds = Number(option('rounds') ?? 3);
const repeats = Number(option('repeats') ?? 3);
const [batch, seq, heads, kvHeads, headDim] = (option('shape') ?? '8,256,8,4,8').split(',').map(Number);
const tunings = (option('tunings') ?? '{};{"promptAttentionChunk":0}').split(';').map((t) => JSON.parse(t));

function random(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

const devices = [];
for (const tuning of tunings) {
  devices.push({
    tuning,
    device: await createDevice({ dawnOptions: ['disable-dawn-features=timestamp_quantization'], tuning }),
  });
}

async function measure(device) {
  const q = device.fromArray(random(batch * seq * heads * headDim, 1), [batch, seq, heads, headDim], 'f32');
  const k = device.fromArray(
    random(batch * seq * kvHeads * headDim, 2),
    [batch, seq, kvHeads, headDim],
    'f32',
  );
  const v = device.fromArray(
    random(batch * seq * kvHeads * headDim, 3),
    [batch, seq, kvHeads, headDim],
    'f32',
  );
  const grad = device.fromArray(
    random(batch * seq * heads * headDim, 4),
    [batch, seq, heads, headDim],
    'f32',
  );
  const once = () => {
    const { output, logsumexp } = attention(q, k, v, { causal: true });
    const grads = attentionBackward(q, k, v, output, logsumexp, grad, { causal: true });
    for (const t of [output, logsumexp, grads.q, grads.k, grads.v]) t.dispose();
  };
  once();
  await device.sync();
  device.startProfile();
  for (let r = 0; r < repeats; r++) once();
  const profile = await device.stopProfile();
  for (const t of [q, k, v, grad]) t.dispose();
  return profile.keys.map((row) => ({ name: row.name, us: (row.totalMs * 1000) / row.dispatches }));
}

for (let round = 0; round < rounds; round++) {
  for (const { tuning, device } of devices) {
    const rows = await measure(device);
    const total = rows.reduce((sum, row) => sum + row.us, 0);
    const line = rows.map((row) => `${row.name.replace(/^attention(-backward)?:/, '')} ${row.us.toFixed(0)}`);
    console.log(
      `round ${round} ${JSON.stringify(tuning)} load ${loadavg()[0].toFixed(2)}: total ${total.toFixed(0)} us | ${line.join(' | ')}`,
    );
  }
}
for (const { device } of devices) device.destroy();
