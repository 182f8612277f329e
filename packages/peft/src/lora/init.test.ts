import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDevice, type Device } from '@webtune/tensors';
import { expectClose, Rng } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAdapter, saveAdapter } from '../files/adapter-files.js';
import { getPeftModel } from '../peft-model.js';
import {
  FIXTURES,
  logitsOf,
  maxAbsDifference,
  memoryFolder,
  randomIds,
  tinyModel,
} from '../testing/models.js';
import { InitRandom, initialFactors, kaimingUniform, pissaFactors } from './init.js';
import { loraConfig } from './lora-config.js';
import type { LoraLinear } from './lora-linear.js';
import { matmulReference } from './reference.js';
import { randomizedSvd, svd } from './svd.js';

describe('initialisations', () => {
  it('default: A Kaiming-uniform within 1/sqrt(in), B zero; gaussian: A ~ N(0, 1/r)', () => {
    const random = new InitRandom(1);
    const inFeatures = 400;
    const { a, b } = initialFactors(true, { r: 8, inFeatures, outFeatures: 30, scaling: 2 }, random);
    const bound = 1 / Math.sqrt(inFeatures);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.95 * bound);
    // Uniform on [-bound, bound]: variance bound^2 / 3.
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(variance).toBeCloseTo(bound ** 2 / 3, 4);
    expect(b.every((v) => v === 0)).toBe(true);
    const gaussian = initialFactors(
      'gaussian',
      { r: 4, inFeatures: 500, outFeatures: 3, scaling: 1 },
      random,
    );
    const std = Math.sqrt(gaussian.a.reduce((s, v) => s + v * v, 0) / gaussian.a.length);
    expect(std).toBeGreaterThan(0.25 * 0.95);
    expect(std).toBeLessThan(0.25 * 1.05);
    expect(gaussian.b.every((v) => v === 0)).toBe(true);
    // The same seed gives the same factors.
    expect(kaimingUniform(3, 5, new InitRandom(9))).toEqual(kaimingUniform(3, 5, new InitRandom(9)));
  });
});

describe('SVD on the host', () => {
  const shapes: [number, number][] = [
    [12, 10],
    [7, 19],
    [33, 33],
    [1, 6],
    [40, 3],
  ];
  for (const [rows, cols] of shapes) {
    it(`${rows} x ${cols}: U S Vt reconstructs the matrix, U and V are orthonormal, S sorted`, () => {
      const matrix = Float64Array.from(new Rng(rows * 100 + cols).uniform(rows * cols, -1, 1));
      const { u, s, vt, k } = svd(matrix, rows, cols);
      expect(k).toBe(Math.min(rows, cols));
      const us = u.map((v, i) => v * s[i % k]);
      expectClose(matmulReference(us, vt, rows, k, cols), matrix, { atol: 1e-12, label: 'reconstruction' });
      const utu = matmulReference(u, u, k, rows, k, true, false);
      const vvt = matmulReference(vt, vt, k, cols, k, false, true);
      const identity = Float64Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0));
      expectClose(utu, identity, { atol: 1e-12, label: 'U^T U' });
      expectClose(vvt, identity, { atol: 1e-12, label: 'Vt V' });
      for (let i = 1; i < k; i++) expect(s[i]).toBeLessThanOrEqual(s[i - 1]);
    });
  }

  it('a rank-deficient matrix gets zero singular values', () => {
    const left = Float64Array.from(new Rng(3).uniform(9 * 2, -1, 1));
    const right = Float64Array.from(new Rng(4).uniform(2 * 6, -1, 1));
    const { s } = svd(matmulReference(left, right, 9, 2, 6), 9, 6);
    expect(s[1]).toBeGreaterThan(0.1);
    for (let i = 2; i < 6; i++) expect(s[i]).toBeLessThan(1e-12);
  });

  it('randomized SVD finds the leading triplets of a matrix with a decaying spectrum', () => {
    // M = U diag(2^-i) V^T with random orthonormal U, V.
    const rows = 60;
    const cols = 40;
    const random = new InitRandom(5);
    const basis = (n: number) =>
      svd(
        Float64Array.from({ length: n * n }, () => random.normal()),
        n,
        n,
      ).u;
    const u = basis(rows);
    const v = basis(cols);
    const matrix = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let sum = 0;
        for (let l = 0; l < cols; l++) sum += u[i * rows + l] * 2 ** -l * v[j * cols + l];
        matrix[i * cols + j] = sum;
      }
    }
    const exact = svd(matrix, rows, cols);
    const approximate = randomizedSvd(matrix, rows, cols, 4, 4, () => random.normal());
    expectClose(approximate.s, exact.s.slice(0, 4), { rtol: 1e-6, label: 'singular values' });
  });
});

describe('PiSSA', () => {
  const fixture = JSON.parse(readFileSync(join(FIXTURES, 'pissa.json'), 'utf8')) as {
    rows: number;
    cols: number;
    r: number;
    scaling: number;
    weight: number[];
    singular_values: number[];
    update: number[];
    residual: number[];
  };

  it("matches PyTorch's PiSSA: singular values, s B A and the residual", () => {
    const { rows, cols, r, scaling } = fixture;
    expectClose(svd(fixture.weight, rows, cols).s, fixture.singular_values, { atol: 1e-12 });
    const { a, b, residual } = pissaFactors(fixture.weight, rows, cols, r, scaling, null, new InitRandom(0));
    // Singular vectors have arbitrary signs: compare the product, which does not.
    const update = matmulReference(Float64Array.from(b), Float64Array.from(a), rows, r, cols).map(
      (x) => x * scaling,
    );
    expectClose(update, fixture.update, { atol: 2e-6, label: 's B A' });
    expectClose(residual, fixture.residual, { atol: 2e-6, label: 'residual' });
    // A and B carry the same share of each singular value: ||A_j|| = ||B_:j|| = sqrt(S_j / s).
    for (let j = 0; j < r; j++) {
      const rowNorm = Math.hypot(...a.slice(j * cols, (j + 1) * cols));
      const columnNorm = Math.hypot(...Array.from({ length: rows }, (_, i) => b[i * r + j]));
      expect(rowNorm).toBeCloseTo(Math.sqrt(fixture.singular_values[j] / scaling), 5);
      expect(columnNorm).toBeCloseTo(rowNorm, 5);
    }
    // pissa_niter_n approximates it. Like torch.svd_lowrank(q = r), subspace iteration converges
    // as (S[r] / S[r-1])^(2n): slowly here, where S[3] / S[2] = 0.93 (a random matrix's flat spectrum).
    const few = pissaFactors(fixture.weight, rows, cols, r, scaling, 2, new InitRandom(1));
    const many = pissaFactors(fixture.weight, rows, cols, r, scaling, 80, new InitRandom(1));
    expectClose(many.residual, fixture.residual, { atol: 1e-4, label: 'randomized residual, 80 iterations' });
    expect(maxAbsDifference(few.residual, fixture.residual)).toBeGreaterThan(
      maxAbsDifference(many.residual, fixture.residual),
    );
  });

  let device: Device;
  beforeAll(async () => {
    device = await createDevice();
  });
  afterAll(() => device?.destroy());

  it('starts at the base model, and converts to a plain LoRA for the original weights', async () => {
    const input = randomIds(device, 32, 2, 5, 4);
    const model = tinyModel(device, 'llama', 8);
    const base = await logitsOf(model, input);
    const peft = await getPeftModel(
      model,
      loraConfig({
        r: 2,
        lora_alpha: 4,
        target_modules: ['q_proj', 'down_proj'],
        init_lora_weights: 'pissa',
      }),
    );
    // W_res + s B A = W: the output is the base model's (to float32 round-off).
    expectClose(await logitsOf(peft, input), base, { atol: 2e-5 });
    // The residual is not W: the principal part moved into the adapter.
    const residual = (await peft.model
      .getSubmodule<LoraLinear>('model.layers.0.self_attn.q_proj')
      .baseLayer.parameter('weight')
      .toArray()) as Float32Array;
    const original = (await tinyModel(device, 'llama', 8)
      .getParameterByName('model.layers.0.self_attn.q_proj.weight')!
      .toArray()) as Float32Array;
    expect(maxAbsDifference(residual, original)).toBeGreaterThan(0.1);
    // "Train": move B, then save converted to LoRA (rank 4, alpha 8) for the untouched base model.
    for (const [name, tensor] of peft.adapterStateDict()) {
      if (name.endsWith('lora_B.weight')) {
        const values = (await tensor.toArray()) as Float32Array;
        device.write(
          tensor,
          values.map((v, i) => v + 0.05 * Math.sin(i)),
        );
      }
    }
    const trained = await logitsOf(peft, input);
    expect(maxAbsDifference(trained, base)).toBeGreaterThan(1e-3);
    const folder = memoryFolder();
    await saveAdapter(peft, folder.sink, { convertPissaToLora: true });
    const config = JSON.parse(new TextDecoder().decode(folder.files.get('adapter_config.json')!));
    expect(config).toMatchObject({ r: 4, lora_alpha: 8, init_lora_weights: true });
    const reloaded = await loadAdapter(tinyModel(device, 'llama', 8), folder.source());
    expectClose(await logitsOf(reloaded, input), trained, { atol: 5e-5 });
    await expect(saveAdapter(reloaded, memoryFolder().sink, { convertPissaToLora: true })).rejects.toThrow(
      /not initialised with PiSSA/,
    );
    peft.model.dispose();
    reloaded.model.dispose();
  });
});
