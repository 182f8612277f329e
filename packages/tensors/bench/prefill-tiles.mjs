// The prompt's products in prefill (prefillProduct) over tile configurations: rows x cols x lanes
// per invocation, and the workgroup order (row tiles outer or inner), for each product kind of a
// prefill -- norm + q/k/v ('qkv', store), norm + gate/up ('gated'), o and down ('o', 'down',
// residual) -- at the bench shapes and Qwen3-0.6B's, for several prompt lengths M. Configurations
// are set through the device's prefill tuning and alternate sample by sample in one process; the
// first rounds are discarded (warm-up, pipeline compiles); each configuration's result is checked
// against a float64 CPU product first. Prints one JSON line per (case, configuration): median ms
// per product, GFLOP/s, samples, the largest error, and the first product's time (compile included).
//   node bench/prefill-tiles.mjs [--shape=stories15M,stories260K,qwen3-0.6B] [--m=16,64,128,200,512]
//     [--kinds=qkv,gated,o,down] [--formats=f32,f16,q8_0] [--rows=16,24,32] [--cols=2,4,6,8]
//     [--gated-cols=1,2,3,4] [--lanes=8] [--inner=0,1] [--samples=7] [--warm=2] [--sample-ms=40]
//     [--layers=1]
// `--layers=N` cycles N copies of the weights (as a model's layers do: each product then reads
// weights that are not in cache); the check uses the first copy.
// `--cols` applies to qkv / o / down, `--gated-cols` to gated (each gated column keeps two sums).
import {
  createDevice,
  decodeRows,
  encodeRows,
  packedWeightFromBytes,
  prefillProduct,
} from '@webtune/tensors';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith('--'))
    .map((a) => {
      const [k, v = '1'] = a.slice(2).split('=');
      return [k, v];
    }),
);
const list = (name, fallback) => (args[name] ?? fallback).split(',').filter(Boolean);
const numbers = (name, fallback) => list(name, fallback).map(Number);

const SHAPES = {
  stories15M: { hidden: 288, intermediate: 768, q: 288, kv: 288 },
  stories260K: { hidden: 64, intermediate: 172, q: 64, kv: 32 },
  'qwen3-0.6B': { hidden: 1024, intermediate: 3072, q: 2048, kv: 1024 },
};
// K must be a multiple of 4 (and of 32 for ggml blocks): 172 is the real stories260K width.
const shapes = list('shape', 'stories15M,stories260K');
const promptRows = numbers('m', '16,64,128,200,512');
const kinds = list('kinds', 'qkv,gated,o,down');
const formats = list('formats', 'f32,f16');
const rowsList = numbers('rows', '16,24,32');
const colsList = numbers('cols', '2,4,6,8');
const gatedColsList = numbers('gated-cols', '1,2,3,4');
const lanesList = numbers('lanes', '8');
const innerList = numbers('inner', '0,1');
const samples = Number(args.samples ?? 7);
const warm = Number(args.warm ?? 2);
const sampleMs = Number(args['sample-ms'] ?? 40);
const layers = Math.max(1, Number(args.layers ?? 1));

const device = await createDevice();
const defaults = { ...device.tuning };
let seed = 1;
const random = (n, scale = 1) =>
  Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return (seed / 2147483648 - 0.5) * 2 * scale;
  });

/** The weights of a kind: [n, K] each, the epilogue, whether the rows are normed first. */
function kindOf(kind, s) {
  if (kind === 'qkv') return { K: s.hidden, widths: [s.q, s.kv, s.kv], epilogue: 'store', norm: true };
  if (kind === 'gated')
    return { K: s.hidden, widths: [s.intermediate, s.intermediate], epilogue: 'swiglu', norm: true };
  if (kind === 'o') return { K: s.q, widths: [s.hidden], epilogue: 'residual', norm: false };
  return { K: s.intermediate, widths: [s.hidden], epilogue: 'residual', norm: false };
}

function weightOf(format, values, n, K) {
  if (format === 'f32') return { tensor: device.fromArray(values, [n, K], 'f32'), values };
  const bytes = encodeRows(values, n, K, format);
  return {
    tensor: packedWeightFromBytes(device, format, [n, K], bytes),
    values: decodeRows(bytes, n, K, format),
  };
}

/** float64 product of decodeMatvec's contract (norm folded, store / residual onto zeros / swiglu). */
function reference(x, M, K, gain, weights, widths, epilogue) {
  const rows = [];
  for (let m = 0; m < M; m++) {
    const row = Array.from(x.subarray(m * K, (m + 1) * K), Number);
    if (gain) {
      const inv = 1 / Math.sqrt(row.reduce((a, v) => a + v * v, 0) / K + 1e-5);
      for (let k = 0; k < K; k++) row[k] *= inv * gain[k];
    }
    rows.push(row);
  }
  const dot = (row, w, c) => {
    let sum = 0;
    for (let k = 0; k < K; k++) sum += row[k] * w[c * K + k];
    return sum;
  };
  const width = epilogue === 'store' ? widths.reduce((a, b) => a + b, 0) : widths[0];
  const out = new Float64Array(M * width);
  for (let m = 0; m < M; m++) {
    if (epilogue === 'swiglu') {
      for (let c = 0; c < widths[0]; c++) {
        const g = dot(rows[m], weights[0], c);
        out[m * width + c] = (g / (1 + Math.exp(-g))) * dot(rows[m], weights[1], c);
      }
    } else {
      let offset = 0;
      weights.forEach((w, i) => {
        for (let c = 0; c < widths[i]; c++) out[m * width + offset + c] = dot(rows[m], w, c);
        offset += widths[i];
      });
    }
  }
  return out;
}

const configsOf = (kind) =>
  rowsList.flatMap((rows) =>
    (kind === 'gated' ? gatedColsList : colsList).flatMap((cols) =>
      lanesList.flatMap((lanes) => innerList.map((inner) => ({ rows, cols, lanes, inner: !!inner }))),
    ),
  );
const label = (c) => `${c.rows}x${c.cols}x${c.lanes}${c.inner ? ' inner' : ''}`;
const setTuning = (c) =>
  Object.assign(device.tuning, {
    prefillTileRows: [c.rows],
    prefillRowsSlack: 0,
    prefillStoreCols: c.cols,
    prefillResidualCols: c.cols,
    prefillGatedCols: c.cols,
    prefillWorkgroup: c.lanes,
    prefillRowTilesInner: c.inner,
  });
const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];

console.log(
  JSON.stringify({
    bench: 'prefill-tiles',
    adapter: device.info?.description ?? device.info?.device ?? 'unknown',
    default_tile: {
      rows: defaults.prefillTileRows,
      store: defaults.prefillStoreCols,
      residual: defaults.prefillResidualCols,
      gated: defaults.prefillGatedCols,
      lanes: defaults.prefillWorkgroup,
      inner: defaults.prefillRowTilesInner,
    },
  }),
);
for (const shapeName of shapes) {
  const s = SHAPES[shapeName];
  if (!s) throw new Error(`unknown --shape=${shapeName} (${Object.keys(SHAPES).join(', ')})`);
  for (const format of formats)
    for (const kind of kinds) {
      const { K, widths, epilogue, norm } = kindOf(kind, s);
      const weights = widths.map((n) => weightOf(format, random(n * K, 0.1), n, K));
      // Further layers' copies (the same values: only where they live differs).
      const copies = [weights.map((w) => w.tensor)];
      for (let l = 1; l < layers; l++)
        copies.push(weights.map((w, i) => weightOf(format, w.values, widths[i], K).tensor));
      const gainValues = norm ? Float32Array.from(random(K, 0.5), (v) => 1 + v) : null;
      const gain = gainValues ? device.fromArray(gainValues, [K], 'f32') : null;
      const width = epilogue === 'store' ? widths.reduce((a, b) => a + b, 0) : widths[0];
      const flops = 2 * K * widths.reduce((a, b) => a + b, 0);
      for (const M of promptRows) {
        const xValues = random(M * K);
        const x = device.fromArray(xValues, [M, K], 'f32');
        const expected = reference(
          xValues,
          M,
          K,
          gainValues,
          weights.map((w) => w.values),
          widths,
          epilogue,
        );
        const scale = expected.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        const run = (out, layer = 0) =>
          prefillProduct(device, {
            x,
            weights: copies[layer % layers],
            norm: gain ? { weight: gain, eps: 1e-5 } : null,
            epilogue,
            out,
          });
        const configs = configsOf(kind).map((c) => ({ ...c, ms: [], error: 0, reps: 1 }));
        // Check each configuration once (this also compiles its pipeline) and size its samples.
        for (const c of configs) {
          setTuning(c);
          const out = device.fromArray(new Float32Array(M * width), [M, width], 'f32');
          const first = performance.now();
          run(out);
          const got = await out.toArray();
          c.firstMs = performance.now() - first;
          for (let i = 0; i < got.length; i++) c.error = Math.max(c.error, Math.abs(got[i] - expected[i]));
          out.destroy?.();
          if (c.error > 1e-4 * Math.max(1, scale) * (format === 'f32' ? 1 : 1))
            console.error(`MISMATCH ${shapeName} ${format} ${kind} M=${M} ${label(c)}: ${c.error}`);
          const start = performance.now();
          run(out);
          await out.toArray();
          c.reps = Math.max(
            2,
            Math.min(50, Math.round(sampleMs / Math.max(0.05, performance.now() - start))),
          );
        }
        const out = device.fromArray(new Float32Array(M * width), [M, width], 'f32');
        for (let round = 0; round < warm + samples; round++)
          for (const c of configs) {
            setTuning(c);
            const start = performance.now();
            for (let r = 0; r < c.reps; r++) run(out, r);
            await out.toArray();
            if (round >= warm) c.ms.push((performance.now() - start) / c.reps);
          }
        out.destroy?.();
        x.destroy?.();
        for (const c of configs) {
          const ms = median(c.ms);
          console.log(
            JSON.stringify({
              shape: shapeName,
              format,
              kind,
              M,
              K,
              widths,
              tile: label(c),
              layers,
              median_ms: +ms.toFixed(3),
              min_ms: +Math.min(...c.ms).toFixed(3),
              gflops: +((flops * M) / ms / 1e6).toFixed(1),
              best_gflops: +((flops * M) / Math.min(...c.ms) / 1e6).toFixed(1),
              max_error: +c.error.toExponential(2),
              // The first product of a configuration, its pipeline's compile included (the first
              // M of a case only; later Ms reuse the pipeline).
              first_ms: +c.firstMs.toFixed(1),
              samples: c.ms.map((v) => +v.toFixed(3)),
            }),
          );
        }
      }
    }
}
Object.assign(device.tuning, defaults);
device.destroy();
