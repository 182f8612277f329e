import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { attention } from './attention.js';
import { attentionBackward } from './attention-backward.js';
import { attentionBackwardReference } from './backward-reference.js';
import { attentionReference } from './reference.js';

let lanes: Device;
let tiled: Device;
beforeAll(async () => {
  lanes = await createDevice();
  // The GPU classes' kernels (kernels/attention-tiled/), asked for through the tuning.
  tiled = await createDevice({ tuning: { attentionKernel: 'workgroup' } });
});
afterAll(() => {
  lanes.destroy();
  tiled.destroy();
});

// A 4,096-token training sequence through the fused (flash-style) forward and backward: online
// softmax over key tiles, only the log-sum-exp kept per row, the backward rebuilding the scores
// tile by tile. One head's [seq, seq] f32 score matrix alone would be 64 MiB; the device's peak
// over forward + backward must stay a small multiple of the [seq, heads, headDim] tensors.
describe('attention over long sequences (4,096 tokens per query, 1,024 tiled)', () => {
  it.each([
    // The tiled kernels' barriers are slow on a CPU rasteriser: a quarter of the length there.
    ['per-query', () => lanes, 4096],
    ['workgroup-tiled', () => tiled, 1024],
  ])(
    '%s kernels: forward and backward match the float64 reference in bounded device memory (causal, GQA, segment ids, softcap)',
    async (_name, deviceOf, seq) => {
      const device = deviceOf();
      const [headsQ, headsKV, headDim] = [2, 1, 8];
      const rng = new Rng(4096);
      const q = rng.uniform(seq * headsQ * headDim, -1.5, 1.5);
      const k = rng.uniform(seq * headsKV * headDim, -1.5, 1.5);
      const v = rng.uniform(seq * headsKV * headDim, -1, 1);
      const grad = rng.uniform(q.length, -1, 1);
      // neat_packing: three examples packed in one row, then 96 padding positions.
      const segments = new Uint32Array(seq);
      const split = Math.floor(seq * 0.37);
      segments
        .fill(1, 0, split)
        .fill(2, split, split + 1)
        .fill(3, split + 1, seq - 96);
      const options = { causal: true, segments: true, softcap: 20 };
      const dims = { batch: 1, seqQ: seq, seqK: seq, headsQ, headsKV, headDim };

      device.resetPeak();
      const before = device.memory().liveBytes;
      const results = await device.scope(async () => {
        const qT = device.fromArray(q, [1, seq, headsQ, headDim], 'f32');
        const kT = device.fromArray(k, [1, seq, headsKV, headDim], 'f32');
        const vT = device.fromArray(v, [1, seq, headsKV, headDim], 'f32');
        const mask = device.fromArray(segments, [1, seq], 'u32');
        const forward = attention(qT, kT, vT, { ...options, paddingMask: mask });
        const gradients = attentionBackward(
          qT,
          kT,
          vT,
          forward.output,
          forward.logsumexp,
          device.fromArray(grad, [1, seq, headsQ, headDim], 'f32'),
          { ...options, paddingMask: mask },
        );
        return {
          output: await forward.output.toArray(),
          logsumexp: await forward.logsumexp.toArray(),
          dq: await gradients.q.toArray(),
          dk: await gradients.k.toArray(),
          dv: await gradients.v.toArray(),
        };
      });
      const peak = device.memory().peakBytes - before;
      const scoreMatrixBytes = seq * seq * 4;
      // Inputs, outputs and gradients: 11 tensors of at most seq * headsQ * headDim f32 values.
      expect(peak).toBeLessThan(12 * seq * headsQ * headDim * 4 + 64 * 1024);
      // At 4,096 tokens: 1.6 MiB measured on lavapipe, against 64 MiB for one head's score matrix.
      expect(peak).toBeLessThan(scoreMatrixBytes / 8);

      const reference = attentionReference(q, k, v, dims, { ...options, paddingMask: segments });
      expectClose(results.output, reference.output, { rtol: 1e-4, atol: 2e-5, label: 'output' });
      const finite = (values: ArrayLike<number>) => Array.from(values, (x) => (Number.isFinite(x) ? x : 0));
      expectClose(finite(results.logsumexp), finite(reference.logsumexp), {
        rtol: 1e-5,
        atol: 1e-5,
        label: 'lse',
      });
      const expected = attentionBackwardReference(
        q,
        k,
        v,
        results.output,
        results.logsumexp,
        grad,
        { batch: 1, queries: seq, keys: seq, heads: headsQ, kvHeads: headsKV, headDim },
        { ...options, paddingMask: segments },
      );
      expectClose(results.dq, expected.q, { rtol: 1e-4, atol: 2e-5, label: 'dq' });
      expectClose(results.dk, expected.k, { rtol: 1e-4, atol: 5e-5, label: 'dk' });
      expectClose(results.dv, expected.v, { rtol: 1e-4, atol: 5e-5, label: 'dv' });
    },
    120_000,
  );
});
