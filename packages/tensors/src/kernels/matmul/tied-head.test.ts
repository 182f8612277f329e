import { expectClose, Rng } from '@webtune/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { backward, clearTape, gradOf, requiresGrad } from '../../autograd/engine.js';
import { autograd } from '../../autograd/index.js';
import { createDevice } from '../../device/create-device.js';
import type { Device } from '../../device/device.js';
import { matmulReference } from './reference.js';

// The tied LM head with an embedding larger than one storage binding: the gradients of
// matmul(h, E, { transposeB: true }) through the autograd matmul rule, E split in chunks (a
// 4 KiB binding limit makes that happen at small sizes), against the float64 reference and
// against the same product on a device where nothing is chunked.

afterEach(() => clearTape());

const TOKENS = [2, 5];
const VOCAB = 150;
const DIM = 36;

/** Forward and backward of the head on `device`; returns logits, dE and dh. */
async function headGradients(device: Device, h: Float32Array, e: Float32Array, dlogits: Float32Array) {
  const hTensor = requiresGrad(device.fromArray(h, [...TOKENS, DIM], 'f32'));
  const eTensor = requiresGrad(device.fromArray(e, [VOCAB, DIM], 'f32'));
  const logits = autograd.matmul(hTensor, eTensor, { transposeB: true });
  backward(logits, device.fromArray(dlogits, [...TOKENS, VOCAB], 'f32'));
  const result = {
    chunked: eTensor.chunked && logits.chunked,
    gradChunks: gradOf(eTensor)!.chunks.map((c) => c.elements),
    weightChunks: eTensor.chunks.map((c) => c.elements),
    logits: await logits.toArray(),
    de: await gradOf(eTensor)!.toArray(),
    dh: await gradOf(hTensor)!.toArray(),
  };
  for (const t of [hTensor, eTensor, logits, gradOf(eTensor)!, gradOf(hTensor)!]) t.dispose();
  return result;
}

describe('tied LM head with a chunked embedding', () => {
  it('gets the gradient of E and of h as without chunks', async () => {
    const rng = new Rng(61);
    const tokens = TOKENS[0] * TOKENS[1];
    const h = rng.uniform(tokens * DIM);
    const e = rng.uniform(VOCAB * DIM);
    const dlogits = rng.uniform(tokens * VOCAB);
    const small = await createDevice({ maxBindingBytes: 4096 });
    const whole = await createDevice();
    try {
      const chunked = await headGradients(small, h, e, dlogits);
      // E [150, 36] (21,600 bytes) in chunks of 28 rows; logits [2, 5, 150] in chunks of 6 rows.
      expect(chunked.chunked).toBe(true);
      expect(chunked.gradChunks).toEqual(chunked.weightChunks);
      const plain = await headGradients(whole, h, e, dlogits);
      const tolerance = { rtol: 2e-5, atol: 2e-5 };
      const logits = matmulReference(h, [tokens, DIM], e, [VOCAB, DIM], { transposeB: true });
      const de = matmulReference(dlogits, [tokens, VOCAB], h, [tokens, DIM], { transposeA: true });
      const dh = matmulReference(dlogits, [tokens, VOCAB], e, [VOCAB, DIM]);
      for (const [name, result] of [
        ['chunked', chunked],
        ['whole', plain],
      ] as const) {
        expectClose(result.logits, logits.data, { ...tolerance, label: `${name} logits` });
        expectClose(result.de, de.data, { ...tolerance, label: `${name} dE` });
        expectClose(result.dh, dh.data, { ...tolerance, label: `${name} dh` });
      }
      expectClose(chunked.de, plain.de, { ...tolerance, label: 'dE chunked vs whole' });
    } finally {
      small.destroy();
      whole.destroy();
    }
  });
});
