import { Rng } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { expectKernel } from '../../testing/expect-kernel.js';
import { decodeRows, encodeRows } from '../packed-matmul/formats.js';
import { packedWeightFromBytes } from '../packed-matmul/packed-weight.js';
import { decodeMatvec } from './decode-matvec.js';
import { decodeSample } from './decode-sample.js';
import { decodeArgmax, decodeEmbed } from './decode-tokens.js';
import { normMatvecReference, type SampleReferenceOptions, sampleReference } from './reference.js';

let device: Device;
const _sharedDevice = () => device;
beforeAll(async () => {
  device = await createDevice();
});

const tolerance = { rtol: 2e-5, atol: 2e-5 };

describe('decodeMatvec', () => {
  it('norm + three weights side by side (q, k, v) matches the float64 reference, rows 1, 3 and 11 (a prompt: row blocks of 8)', async () => {
    for (const [rows, K, widths] of [
      [1, 64, [64, 32, 32]],
      [3, 36, [9, 13, 5]],
      [11, 20, [8, 12, 4]],
    ] as const) {
      const rng = new Rng(rows);
      const x = rng.uniform(rows * K, -2, 2);
      const gain = rng.uniform(K, 0.5, 1.5);
      const weights = widths.map((n) => rng.uniform(n * K, -1, 1));
      const out = device.empty([rows, widths[0] + widths[1] + widths[2]], 'f32');
      decodeMatvec(device, {
        x: device.fromArray(x, [rows, K], 'f32'),
        weights: weights.map((w, i) => device.fromArray(w, [widths[i], K], 'f32')),
        norm: { weight: device.fromArray(gain, [K], 'f32'), eps: 1e-5 },
        epilogue: 'store',
        out,
      });
      const parts = weights.map((w, i) =>
        normMatvecReference(x, rows, K, { weight: gain, eps: 1e-5 }, w, widths[i]),
      );
      const expected = new Float64Array(out.size);
      const width = out.shape[1];
      for (let r = 0; r < rows; r++) {
        let offset = 0;
        parts.forEach((part, i) => {
          expected.set(part.subarray(r * widths[i], (r + 1) * widths[i]), r * width + offset);
          offset += widths[i];
        });
      }
      await expectKernel(`store rows ${rows}`, { out: { actual: out, expected } }, tolerance);
    }
  });

  it('swiglu and residual epilogues match the reference (10 rows: full and partial row blocks)', async () => {
    const rng = new Rng(7);
    const rows = 10;
    const K = 24;
    const n = 10;
    const x = rng.uniform(rows * K, -2, 2);
    const gain = rng.uniform(K, 0.5, 1.5);
    const gate = rng.uniform(n * K, -1, 1);
    const up = rng.uniform(n * K, -1, 1);
    const act = device.empty([rows, n], 'f32');
    const xs = device.fromArray(x, [rows, K], 'f32');
    decodeMatvec(device, {
      x: xs,
      weights: [device.fromArray(gate, [n, K], 'f32'), device.fromArray(up, [n, K], 'f32')],
      norm: { weight: device.fromArray(gain, [K], 'f32'), eps: 1e-6 },
      epilogue: 'swiglu',
      out: act,
    });
    const g = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-6 }, gate, n);
    const u = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-6 }, up, n);
    await expectKernel(
      'swiglu',
      { out: { actual: act, expected: g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]) } },
      tolerance,
    );

    const residual = rng.uniform(rows * n, -1, 1);
    const down = rng.uniform(n * K, -1, 1);
    const stream = device.fromArray(residual, [rows, n], 'f32');
    const bias = rng.uniform(n, -1, 1);
    decodeMatvec(device, {
      x: xs,
      weights: [device.fromArray(down, [n, K], 'f32')],
      biases: [device.fromArray(bias, [n], 'f32')],
      epilogue: 'residual',
      out: stream,
    });
    const product = normMatvecReference(x, rows, K, null, down, n);
    await expectKernel(
      'residual + bias',
      { out: { actual: stream, expected: product.map((v, i) => v + bias[i % n] + residual[i]) } },
      tolerance,
    );
  });

  it('swiglu over one stacked gate/up weight [2n, K] (Phi-3), f32 and f16, 1 and 3 rows, matches the reference', async () => {
    const rng = new Rng(17);
    const K = 28;
    const n = 13;
    for (const rows of [1, 3]) {
      const x = rng.uniform(rows * K, -2, 2);
      const gain = rng.uniform(K, 0.5, 1.5);
      const stacked = rng.uniform(2 * n * K, -1, 1);
      const g = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-6 }, stacked.subarray(0, n * K), n);
      const u = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-6 }, stacked.subarray(n * K), n);
      for (const format of ['f32', 'f16'] as const) {
        // f16: the reference takes the rounded weights.
        const halves =
          format === 'f16' ? decodeRows(encodeRows(stacked, 2 * n, K, 'f16'), 2 * n, K, 'f16') : stacked;
        const gh = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-6 }, halves.subarray(0, n * K), n);
        const uh = normMatvecReference(x, rows, K, { weight: gain, eps: 1e-6 }, halves.subarray(n * K), n);
        const weight =
          format === 'f32'
            ? device.fromArray(stacked, [2 * n, K], 'f32')
            : packedWeightFromBytes(device, 'f16', [2 * n, K], encodeRows(stacked, 2 * n, K, 'f16'));
        const act = device.empty([rows, n], 'f32');
        decodeMatvec(device, {
          x: device.fromArray(x, [rows, K], 'f32'),
          weights: [weight],
          norm: { weight: device.fromArray(gain, [K], 'f32'), eps: 1e-6 },
          epilogue: 'swiglu',
          out: act,
        });
        const [gates, ups] = format === 'f32' ? [g, u] : [gh, uh];
        await expectKernel(
          `stacked swiglu ${format}, rows ${rows}`,
          { out: { actual: act, expected: gates.map((v, i) => (v / (1 + Math.exp(-v))) * ups[i]) } },
          tolerance,
        );
      }
    }
  });

  it('reads f16 and bf16 packed weights in place (widened in the kernel): norm + q/k/v, SwiGLU', async () => {
    for (const [format, rows] of [
      ['f16', 1],
      ['f16', 5],
      ['bf16', 2],
    ] as const) {
      {
        const rng = new Rng(rows + (format === 'f16' ? 50 : 60));
        const K = 44;
        const widths = [12, 8, 8];
        const x = rng.uniform(rows * K, -2, 2);
        const gain = rng.uniform(K, 0.5, 1.5);
        const norm = { weight: gain, eps: 1e-5 };
        const packedWeights = widths.map((n) => {
          const bytes = encodeRows(rng.uniform(n * K, -1, 1), n, K, format);
          return {
            weight: packedWeightFromBytes(device, format, [n, K], bytes),
            values: decodeRows(bytes, n, K, format),
          };
        });
        const xs = device.fromArray(x, [rows, K], 'f32');
        const gpuNorm = { weight: device.fromArray(gain, [K], 'f32'), eps: 1e-5 };
        const qkv = device.empty([rows, 28], 'f32');
        decodeMatvec(device, {
          x: xs,
          weights: packedWeights.map((p) => p.weight),
          norm: gpuNorm,
          epilogue: 'store',
          out: qkv,
        });
        const parts = packedWeights.map((p, i) => normMatvecReference(x, rows, K, norm, p.values, widths[i]));
        const expected = new Float64Array(rows * 28);
        for (let r = 0; r < rows; r++) {
          let offset = 0;
          parts.forEach((part, i) => {
            expected.set(part.subarray(r * widths[i], (r + 1) * widths[i]), r * 28 + offset);
            offset += widths[i];
          });
        }
        const act = device.empty([rows, 8], 'f32');
        const withSwiglu = rows === 1;
        if (withSwiglu)
          decodeMatvec(device, {
            x: xs,
            weights: [packedWeights[1].weight, packedWeights[2].weight],
            norm: gpuNorm,
            epilogue: 'swiglu',
            out: act,
          });
        const swiglu = parts[1].map((g, i) => (g / (1 + Math.exp(-g))) * parts[2][i]);
        await expectKernel(
          `${format} rows ${rows}`,
          withSwiglu
            ? { qkv: { actual: qkv, expected }, swiglu: { actual: act, expected: swiglu } }
            : { qkv: { actual: qkv, expected } },
          tolerance,
        );
      }
    }
  });

  it('adds LoRA terms scale * B u to the weights that have one (q and v of three; gate and up in SwiGLU)', async () => {
    const rng = new Rng(77);
    const rows = 2;
    const K = 16;
    const widths = [8, 4, 4];
    const ranks = [3, 0, 2];
    const x = rng.uniform(rows * K, -1, 1);
    const weights = widths.map((n) => rng.uniform(n * K, -1, 1));
    const bs = widths.map((n, i) => rng.uniform(n * Math.max(1, ranks[i]), -1, 1));
    const uWidth = 6;
    const u = rng.uniform(rows * uWidth, -1, 1);
    const offsets = [0, 0, 3];
    const scales = [0.5, 0, 2];
    const gpuU = device.fromArray(u, [rows, uWidth], 'f32');
    const terms = ranks.map((rank, i) =>
      rank
        ? { b: device.fromArray(bs[i], [widths[i], rank], 'f32'), offset: offsets[i], scale: scales[i] }
        : null,
    );
    const out = device.empty([rows, 16], 'f32');
    decodeMatvec(device, {
      x: device.fromArray(x, [rows, K], 'f32'),
      weights: weights.map((w, i) => device.fromArray(w, [widths[i], K], 'f32')),
      epilogue: 'store',
      out,
      lowRank: { u: gpuU, terms },
    });
    const low = (i: number, r: number, col: number) => {
      let sum = 0;
      for (let t = 0; t < ranks[i]; t++) sum += u[r * uWidth + offsets[i] + t] * bs[i][col * ranks[i] + t];
      return scales[i] * sum;
    };
    const parts = weights.map((w, i) => normMatvecReference(x, rows, K, null, w, widths[i]));
    const expected = new Float64Array(rows * 16);
    for (let r = 0; r < rows; r++) {
      let offset = 0;
      parts.forEach((part, i) => {
        for (let c = 0; c < widths[i]; c++)
          expected[r * 16 + offset + c] = part[r * widths[i] + c] + low(i, r, c);
        offset += widths[i];
      });
    }
    const act = device.empty([rows, 4], 'f32');
    decodeMatvec(device, {
      x: device.fromArray(x, [rows, K], 'f32'),
      weights: [1, 2].map((i) => device.fromArray(weights[i], [4, K], 'f32')),
      epilogue: 'swiglu',
      out: act,
      lowRank: {
        u: gpuU,
        terms: [{ b: device.fromArray(bs[0].slice(0, 12), [4, 3], 'f32'), offset: 0, scale: 0.5 }, terms[2]],
      },
    });
    const swiglu = new Float64Array(rows * 4);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < 4; c++) {
        const gate = parts[1][r * 4 + c] + low(0, r, c);
        const up = parts[2][r * 4 + c] + low(2, r, c);
        swiglu[r * 4 + c] = (gate / (1 + Math.exp(-gate))) * up;
      }
    }
    await expectKernel(
      'lora',
      { store: { actual: out, expected }, swiglu: { actual: act, expected: swiglu } },
      tolerance,
    );
  });

  it('DoRA: a factor per output scales the weight and its low-rank term together, before the bias', async () => {
    const rng = new Rng(78);
    const rows = 3;
    const K = 12;
    const widths = [5, 7];
    const rank = 2;
    const x = rng.uniform(rows * K, -1, 1);
    const weights = widths.map((n) => rng.uniform(n * K, -1, 1));
    const bs = widths.map((n) => rng.uniform(n * rank, -1, 1));
    const factors = widths.map((n) => rng.uniform(n, 0.5, 1.5));
    const biases = widths.map((n) => rng.uniform(n, -1, 1));
    const u = rng.uniform(rows * 2 * rank, -1, 1);
    const out = device.empty([rows, 12], 'f32');
    decodeMatvec(device, {
      x: device.fromArray(x, [rows, K], 'f32'),
      weights: weights.map((w, i) => device.fromArray(w, [widths[i], K], 'f32')),
      biases: biases.map((b, i) => device.fromArray(b, [widths[i]], 'f32')),
      epilogue: 'store',
      out,
      lowRank: {
        u: device.fromArray(u, [rows, 2 * rank], 'f32'),
        terms: widths.map((n, i) => ({
          b: device.fromArray(bs[i], [n, rank], 'f32'),
          offset: i * rank,
          scale: 0.75,
          // The second weight is plain LoRA: no factor.
          factor: i === 0 ? device.fromArray(factors[i], [n], 'f32') : null,
        })),
      },
    });
    const expected = new Float64Array(rows * 12);
    weights.forEach((w, i) => {
      const part = normMatvecReference(x, rows, K, null, w, widths[i]);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < widths[i]; c++) {
          let low = 0;
          for (let t = 0; t < rank; t++) low += u[r * 2 * rank + i * rank + t] * bs[i][c * rank + t];
          const sum = part[r * widths[i] + c] + 0.75 * low;
          expected[r * 12 + i * widths[0] + c] = (i === 0 ? factors[0][c] * sum : sum) + biases[i][c];
        }
      }
    });
    await expectKernel('dora', { out: { actual: out, expected } }, tolerance);
  });

  it('gives the same products with a GPU tuning (32 lanes, 4 columns per workgroup)', async () => {
    const gpuLike = await createDevice({ tuning: { matmulSmallRowsLanes: 32, matmulSmallRowsCols: 4 } });
    try {
      const rng = new Rng(11);
      const [rows, K, n] = [2, 200, 37];
      const x = rng.uniform(rows * K, -2, 2);
      const gain = rng.uniform(K, 0.5, 1.5);
      const weights = [rng.uniform(n * K, -1, 1), rng.uniform(5 * K, -1, 1)];
      const out = gpuLike.empty([rows, n + 5], 'f32');
      decodeMatvec(gpuLike, {
        x: gpuLike.fromArray(x, [rows, K], 'f32'),
        weights: [gpuLike.fromArray(weights[0], [n, K], 'f32'), gpuLike.fromArray(weights[1], [5, K], 'f32')],
        norm: { weight: gpuLike.fromArray(gain, [K], 'f32'), eps: 1e-5 },
        epilogue: 'store',
        out,
      });
      const norm = { weight: gain, eps: 1e-5 };
      const first = normMatvecReference(x, rows, K, norm, weights[0], n);
      const second = normMatvecReference(x, rows, K, norm, weights[1], 5);
      const expected = new Float64Array(out.size);
      for (let r = 0; r < rows; r++) {
        expected.set(first.subarray(r * n, (r + 1) * n), r * (n + 5));
        expected.set(second.subarray(r * 5, (r + 1) * 5), r * (n + 5) + n);
      }
      await expectKernel('gpu tuning', { out: { actual: out, expected } }, tolerance);
    } finally {
      gpuLike.destroy();
    }
  });

  it('rejects K not a multiple of 4 and a wrong output shape', () => {
    const x = device.fromArray(new Float32Array(6), [1, 6], 'f32');
    const w = device.fromArray(new Float32Array(12), [2, 6], 'f32');
    expect(() =>
      decodeMatvec(device, { x, weights: [w], epilogue: 'store', out: device.empty([1, 2], 'f32') }),
    ).toThrow(/K % 4/);
    const x4 = device.fromArray(new Float32Array(4), [1, 4], 'f32');
    const w4 = device.fromArray(new Float32Array(8), [2, 4], 'f32');
    expect(() =>
      decodeMatvec(device, { x: x4, weights: [w4], epilogue: 'store', out: device.empty([1, 3], 'f32') }),
    ).toThrow(/out/);
  });
});

describe('decode tokens', () => {
  it('embeds the ids and takes each row argmax (lowest index among ties, -1 for an all-NaN row)', async () => {
    const rng = new Rng(3);
    const table = rng.uniform(10 * 8, -1, 1);
    const ids = device.fromArray([7, 2], [2], 'i32');
    const hidden = device.empty([2, 8], 'f32');
    decodeEmbed(device, device.fromArray(table, [10, 8], 'f32'), ids, hidden);
    await expectKernel('embed', {
      hidden: { actual: hidden, expected: [...table.slice(56, 64), ...table.slice(16, 24)], exact: true },
    });

    const vocab = 1000;
    const logits = rng.uniform(3 * vocab, -5, 5);
    logits[123] = 9;
    logits[777] = 9;
    logits.fill(Number.NaN, 2 * vocab, 3 * vocab);
    logits[vocab + 999] = 7;
    const rowIds = device.fromArray([0, 0, 0], [3], 'i32');
    const log = device.fromArray(new Int32Array(9).fill(5), [9], 'i32');
    decodeArgmax(device, device.fromArray(logits, [3, vocab], 'f32'), rowIds, log, 1);
    await expectKernel('argmax', {
      ids: { actual: rowIds, expected: [123, 999, -1], exact: true },
      tokens: { actual: log, expected: [5, 5, 5, 123, 999, -1, 5, 5, 5], exact: true },
    });
  });
});

describe('decodeSample', () => {
  it('chooses what the host sampler chooses: penalty, greedy, temperature, top-k, top-p (ties), min-p; -1 for NaN', async () => {
    const rng = new Rng(21);
    const rows = 4;
    const vocab = 700;
    const logits = rng.uniform(rows * vocab, -4, 4);
    // Row 1: duplicated values around the top-p cut; row 3: a NaN.
    for (let i = 0; i < 40; i++) logits[vocab + 100 + i] = 2.5;
    logits[3 * vocab + 5] = Number.NaN;
    const seenIds = [[3, 9, 400], [100, 101], [], [7]];
    const seenHost = new Uint32Array(rows * vocab);
    seenIds.forEach((list, r) => {
      for (const id of list) seenHost[r * vocab + id] = 1;
    });
    const cases: SampleReferenceOptions[] = [
      { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1.3 },
      { temperature: 0.8, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 },
      { temperature: 1.1, topK: 17, topP: 1, minP: 0, repetitionPenalty: 1.2 },
      { temperature: 0.7, topK: 0, topP: 0.6, minP: 0, repetitionPenalty: 1 },
      { temperature: 1, topK: 50, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1 },
    ];
    for (const [index, options] of cases.entries()) {
      for (const draw of [0.02, 0.5, 0.97]) {
        const draws = Array.from({ length: rows }, (_, r) => (draw + r * 0.13) % 1);
        const seen = device.fromArray(seenHost, [rows, vocab], 'u32');
        const ids = device.fromArray(new Int32Array(rows), [rows], 'i32');
        const tokens = device.fromArray(new Int32Array(rows), [rows], 'i32');
        decodeSample(device, {
          logits: device.fromArray(logits, [rows, vocab], 'f32'),
          seen,
          draws: device.fromArray(draws, [rows], 'f32'),
          ids,
          tokens,
          at: 0,
          ...options,
        });
        const expected = Array.from({ length: rows }, (_, r) =>
          sampleReference(
            logits.subarray(r * vocab, (r + 1) * vocab),
            options,
            draws[r],
            new Set(seenIds[r]),
          ),
        );
        await expectKernel(`case ${index} draw ${draw}`, {
          ids: { actual: ids, expected, exact: true },
          tokens: { actual: tokens, expected, exact: true },
        });
        // The chosen ids are marked for the next step's penalty.
        const marked = await seen.toArray();
        expected.forEach((id, r) => {
          if (id >= 0) expect(marked[r * vocab + id]).toBe(1);
        });
      }
    }
  });
});
