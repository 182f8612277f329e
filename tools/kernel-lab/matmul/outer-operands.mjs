// The backward products of a linear layer (dx = dy W, dW = dy^T x) with their transposed operands
// read in place (matmulOuterOperands, the default) against packing a copy first, back to back in
// one process, interleaved, medians of --reps; each product's result is compared between the two.
// Usage: node outer-operands.mjs [--reps=N] [TxINxOUT ...]   (tokens x in features x out features)
//   defaults: the stories260K and stories15M layers at 8 x 256 and 4 x 256 tokens, LoRA r 8.
import { createDevice, matmul } from '@webtune/tensors';

const args = process.argv.slice(2);
const reps = Number(args.find((a) => a.startsWith('--reps='))?.slice(7) ?? 9);
const given = args.filter((a) => !a.startsWith('--')).map((s) => s.split('x').map(Number));
const layers = given.length
  ? given
  : [
      [2048, 64, 64],
      [2048, 64, 172],
      [2048, 172, 64],
      [2048, 64, 8],
      [1024, 288, 288],
      [1024, 288, 768],
      [1024, 768, 288],
      [1024, 288, 8],
    ];
const devices = {
  packed: await createDevice({ tuning: { matmulOuterOperands: false } }),
  'in place': await createDevice(),
};
const median = (list) => [...list].sort((x, y) => x - y)[Math.floor(list.length / 2)];
const values = (count, seed) => {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
};
const rows = [];
for (const [T, IN, OUT] of layers) {
  const dy = values(T * OUT, 1);
  const x = values(T * IN, 2);
  const w = values(OUT * IN, 3);
  const products = {
    'dx = dy W': (d) => [d.fromArray(dy, [T, OUT], 'f32'), d.fromArray(w, [OUT, IN], 'f32'), {}],
    'dW = dy^T x': (d) => [
      d.fromArray(dy, [T, OUT], 'f32'),
      d.fromArray(x, [T, IN], 'f32'),
      { transposeA: true },
    ],
  };
  for (const [name, make] of Object.entries(products)) {
    const times = { packed: [], 'in place': [] };
    const results = {};
    const inputs = Object.fromEntries(Object.entries(devices).map(([label, d]) => [label, make(d)]));
    for (let rep = -1; rep < reps; rep++) {
      for (const [label, d] of Object.entries(devices)) {
        const [a, b, options] = inputs[label];
        await d.sync();
        const began = performance.now();
        const out = matmul(a, b, options);
        await d.sync();
        if (rep >= 0) times[label].push(performance.now() - began);
        if (rep === reps - 1) results[label] = await out.toArray();
        out.dispose();
      }
    }
    let worst = 0;
    for (let i = 0; i < results.packed.length; i++) {
      worst = Math.max(
        worst,
        Math.abs(results.packed[i] - results['in place'][i]) / (1 + Math.abs(results.packed[i])),
      );
    }
    rows.push({
      layer: `${T}x${IN}x${OUT}`,
      product: name,
      'packed ms': Number(median(times.packed).toFixed(3)),
      'in place ms': Number(median(times['in place']).toFixed(3)),
      speedup: Number((median(times.packed) / median(times['in place'])).toFixed(2)),
      'max rel diff': worst.toExponential(1),
    });
  }
}
console.table(rows);
for (const d of Object.values(devices)) d.destroy();
