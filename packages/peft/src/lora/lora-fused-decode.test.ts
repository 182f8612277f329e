import { FusedDecoder, fusedDecodeUnsupported, generateWithTimings, KVCache } from '@webtune/nn';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter } from '../files/adapter-files.js';
import { fixtureSource, ids, loadBase, logitsOf, readGolden } from '../testing/models.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

/**
 * LoRA applied inside the fused decode kernels (A x, then scale B (A x) added before each
 * product's epilogue), on PEFT 0.21's own adapters (tools/golden/peft_adapters.py): q/v only,
 * and regex targets with per-module ranks and alphas (k_proj alone in the q/k/v dispatch, up_proj
 * alone in gate/up) and rsLoRA; and DoRA on every linear layer (m / ||W + s B A|| per output
 * applied in the kernels).
 */
describe('LoRA on the fused decode path', () => {
  for (const name of ['lora-qv', 'lora-regex-patterns', 'dora-all-linear']) {
    it(`${name}: the fused prefill (tiled, where it applies, and decode's products) gives PEFT's logits and the step the forward's (1e-4); greedy tokens of the unfused path`, async () => {
      const golden = readGolden('adapters', name);
      const base = await loadBase(device, golden.base as 'llama' | 'qwen2');
      const peft = await loadAdapter(base, fixtureSource('adapters', name));
      const model = peft.model;
      try {
        expect(fusedDecodeUnsupported(model)).toBeNull();
        const rows = golden.input_ids;
        const [batch, seq, vocab] = golden.shape;
        const forward = await logitsOf(peft, ids(device, rows));
        const cache = KVCache.forModel(device, model.config, batch, seq + 1);
        const decoder = new FusedDecoder(model, cache, new Array(batch).fill(0), 1);
        try {
          // The tiled prefill (long prompts), then decode's products (short ones), which fill the cache alike
          // (DoRA's factors in both).
          expect(decoder.tiledPrefillUnsupported).toBeNull();
          for (const tiled of [true, false]) {
            const logits = (await decoder.prefill(
              Int32Array.from(rows.flat()),
              seq,
              0,
              false,
              tiled,
            )) as Float32Array;
            for (let b = 0; b < batch; b++) {
              const at = (b * seq + seq - 1) * vocab;
              const row = logits.subarray(b * vocab, (b + 1) * vocab);
              expectClose(row, golden.logits.slice(at, at + vocab), {
                atol: 3e-4,
                rtol: 1e-4,
                label: `PEFT row ${b}${tiled ? ' (tiled)' : ''}`,
              });
              expectClose(row, forward.subarray(at, at + vocab), {
                atol: 1e-4,
                rtol: 0,
                label: `forward row ${b}${tiled ? ' (tiled)' : ''}`,
              });
            }
          }
          cache.advance(seq);
          decoder.setIds([3, 5]);
          decoder.encodeLogits(cache.length);
          const stepped = await decoder.logits.toArray();
          const longer = rows.map((row, b) => [...row, b === 0 ? 3 : 5]);
          const expected = await logitsOf(peft, ids(device, longer));
          for (let b = 0; b < batch; b++) {
            const at = (b * (seq + 1) + seq) * vocab;
            expectClose(stepped.subarray(b * vocab, (b + 1) * vocab), expected.subarray(at, at + vocab), {
              atol: 1e-4,
              rtol: 0,
              label: `step row ${b}`,
            });
          }
        } finally {
          decoder.dispose();
          cache.dispose();
        }
        const options = { maxNewTokens: 12, stopTokens: [] };
        const plain = await generateWithTimings(model, null, rows, { ...options, fusedDecode: false });
        const fused = await generateWithTimings(model, null, rows, options);
        expect(fused.timings.fused).toBe(true);
        expect(fused.results.map((r) => r.tokens)).toEqual(plain.results.map((r) => r.tokens));
        // With the adapters switched off the fused path runs the base alone (the LoRA cases show it).
        if (name.startsWith('dora')) return;
        const off = await peft.withAdaptersDisabled(() => generateWithTimings(model, null, rows, options));
        const baseAlone = await peft.withAdaptersDisabled(() =>
          generateWithTimings(model, null, rows, { ...options, fusedDecode: false }),
        );
        expect(off.timings.fused).toBe(true);
        expect(off.results.map((r) => r.tokens)).toEqual(baseAlone.results.map((r) => r.tokens));
      } finally {
        model.dispose();
      }
      // DoRA compiles its own product kernels (a factor per weight): about 150 s at load 26.
    }, 300_000);
  }
});
