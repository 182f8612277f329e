import { createDevice, type Device } from '@webtune/tensors';
import { expectClose } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../generation/generate.js';
import { perplexityOfIds } from '../perplexity.js';
import { cachedStepLogits } from '../testing/cached-steps.js';
import { loadTransformersFixture, TRANSFORMERS_FIXTURES } from '../testing/fixtures.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => device?.destroy());

// The bounds: logits within 1e-4 of Transformers (float64 there, float32 here).
const LOGITS = { atol: 1e-4, rtol: 0 };

describe('every architecture against Transformers itself (tools/golden/transformers_families.py)', () => {
  for (const name of TRANSFORMERS_FIXTURES) {
    it(`${name}: logits of a full pass and of a prefill + KV-cached steps, and perplexity`, async () => {
      const { model, golden } = await loadTransformersFixture(device, name);
      try {
        const [batch, seq, vocab] = golden.shape;
        const full = await device.scope(async () => {
          const ids = device.fromArray(golden.input_ids.flat(), [batch, seq], 'i32');
          return model.forward(ids).toArray();
        });
        expectClose(full, golden.logits, { ...LOGITS, label: `${name} logits` });

        // Prefill 3 tokens, then one at a time: past the sliding windows (4, 6) and LongRoPE's
        // short context (8), so cached keys, windows and the switch to long factors all count.
        const { steps } = await cachedStepLogits(device, model, golden.input_ids, 3);
        // Transformers rotates a whole pass with LongRoPE's long factors once the pass outgrows
        // the short context; a cached step up to it uses the short ones. So the LongRoPE models'
        // cached steps are checked against Transformers' pass over the short context only (the
        // switch itself is generation's business, tested below).
        const short = golden.short_context;
        const reference = short ? short.logits : golden.logits;
        const referenceSeq = short ? short.length : seq;
        let position = 0;
        for (const step of steps) {
          const width = step.length / (batch * vocab);
          for (let b = 0; b < batch; b++) {
            for (let p = 0; p < width; p++) {
              const at = position + p;
              if (at >= referenceSeq) continue;
              const got = step.subarray((b * width + p) * vocab, (b * width + p + 1) * vocab);
              const start = (b * referenceSeq + at) * vocab;
              expectClose(got, reference.slice(start, start + vocab), {
                ...LOGITS,
                label: `${name} cached row ${b} position ${at}`,
              });
            }
          }
          position += width;
        }

        // Perplexity within 1e-5 nats of Transformers' per-token losses, row by row.
        for (let b = 0; b < batch; b++) {
          const result = await perplexityOfIds(model, golden.input_ids[b], { window: seq, stride: seq - 1 });
          const losses = golden.token_losses.slice(b * (seq - 1), (b + 1) * (seq - 1));
          const expected = losses.reduce((sum, loss) => sum + loss, 0) / losses.length;
          expect(result.tokens).toBe(seq - 1);
          expect(Math.abs(result.meanLoss - expected)).toBeLessThan(1e-5);
        }
      } finally {
        model.dispose();
      }
    });

    it(`${name}: 64 greedy tokens with the KV cache are Transformers' greedy tokens`, async () => {
      const { model, golden } = await loadTransformersFixture(device, name);
      try {
        const [result] = await generate(model, null, [golden.greedy.prompt], {
          maxNewTokens: golden.greedy.tokens.length,
          stopTokens: [],
        });
        expect(result.tokens).toEqual(golden.greedy.tokens);
        // A golden that repeats one token would prove little: every one of them wanders.
        expect(new Set(golden.greedy.tokens).size).toBeGreaterThanOrEqual(8);
        const fromGenerate = golden.greedy.generate_tokens;
        if (fromGenerate && golden.short_context) {
          // Up to LongRoPE's switch, Transformers' own generate() gives the same tokens (past it,
          // 5.18 feeds Phi-3 only the newest token: see tools/golden/transformers_families.py).
          const beforeSwitch = golden.short_context.length - golden.greedy.prompt.length + 1;
          expect(result.tokens.slice(0, beforeSwitch)).toEqual(fromGenerate.slice(0, beforeSwitch));
        }
      } finally {
        model.dispose();
      }
    });
  }
});
