// The decode head's product (final norm + [vocab, hidden] matvec, one row) with the table in f32
// against f16 (decodeMatvec; a head over one binding is split in chunks of rows), alternating in
// one process: median ms per product over 20 products per sample, 7 samples after a warm-up.
//   node bench/head-matvec.mjs [vocab=32000] [hidden=288]
import { createDevice, decodeMatvec, encodeRows, packedWeightFromBytes } from '@webtune/tensors';

const vocab = Number(process.argv[2] ?? 32000);
const hidden = Number(process.argv[3] ?? 288);
const device = await createDevice();
const values = Float32Array.from({ length: vocab * hidden }, (_, i) => Math.sin(i * 0.37) * 0.05);
const x = device.fromArray(
  Float32Array.from({ length: hidden }, (_, i) => Math.cos(i)),
  [1, hidden],
  'f32',
);
const gain = device.fromArray(new Float32Array(hidden).fill(1), [hidden], 'f32');
const out = device.empty([1, vocab], 'f32');
const heads = {
  f32: device.fromArray(values, [vocab, hidden], 'f32'),
  f16: packedWeightFromBytes(device, 'f16', [vocab, hidden], encodeRows(values, vocab, hidden, 'f16')),
};
const run = async (weight, count) => {
  const start = performance.now();
  for (let i = 0; i < count; i++)
    decodeMatvec(device, { x, weights: [weight], norm: { weight: gain, eps: 1e-5 }, epilogue: 'store', out });
  await out.toArray();
  return (performance.now() - start) / count;
};
const samples = { f32: [], f16: [] };
for (let s = 0; s <= 7; s++)
  for (const [name, weight] of Object.entries(heads)) {
    const ms = await run(weight, 20);
    if (s > 0) samples[name].push(ms);
  }
const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
for (const [name, ms] of Object.entries(samples))
  console.log(
    JSON.stringify({
      vocab,
      hidden,
      head: name,
      median_ms: +median(ms).toFixed(2),
      samples: ms.map((v) => +v.toFixed(2)),
    }),
  );
device.destroy();
