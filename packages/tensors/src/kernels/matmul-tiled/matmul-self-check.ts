import { roundToF16 } from '../../tensor/dtype.js';
import { sizeOf } from '../../tensor/shape.js';
import type { Device, Tensor } from '../../tensor/tensor.js';
import { matmulReference } from '../matmul/reference.js';

/**
 * A device-side check of a matmul kernel variant before it is trusted with a user's numbers: a
 * few small products at sizes chosen around the variant's tile so that every edge case runs
 * (rows, columns and K each short of a tile, exactly whole, and spanning two), with transposed
 * operands, a batch and a bias, each compared with the float64 reference (matmul/reference.ts).
 * Used for kernels that cannot be tested where webtune is developed (subgroup matrices:
 * subgroup-matrix-check.ts); the tests run it on kernels lavapipe can run, right and broken.
 */
export interface SelfCheckProduct {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: boolean;
}

export interface CandidateOptions {
  transposeA: boolean;
  transposeB: boolean;
  bias: Tensor | null;
}

/** Runs one product with the variant under test; may be async (a test's broken variants are). */
export type CandidateMatmul = (a: Tensor, b: Tensor, options: CandidateOptions) => Tensor | Promise<Tensor>;

/** Output rows, columns and k per step of the variant's workgroup. */
export interface CheckTile {
  rows: number;
  cols: number;
  depth: number;
}

/** The products for a tile: every edge, whole tiles, both transposes, a batch, a bias. */
export function selfCheckProducts(tile: CheckTile): SelfCheckProduct[] {
  const { rows: R, cols: C, depth: D } = tile;
  return [
    // One tile and one row; two column tiles, the last short by one; K over two steps, K % 4 = 3.
    { a: [R + 1, D + 3], b: [D + 3, 2 * C - 1], bias: true },
    // Whole tiles in every axis, k contiguous in both operands (vector loads where K % 4 = 0).
    { a: [2 * R, 2 * D], b: [C, 2 * D], transposeB: true },
    // Less than one tile in every axis, a stored transposed.
    { a: [5, Math.max(1, R - 3)], b: [5, Math.max(1, C - 1)], transposeA: true, bias: true },
    // A batch of two that does not fold into rows; K one vec4 past a step.
    { a: [2, Math.max(1, R - 1), D + 4], b: [2, D + 4, C + 2] },
  ];
}

/** Deterministic values in [-1, 1) (a 32-bit xorshift), rounded to f16 for f16 products. */
function values(count: number, seed: number, dtype: 'f32' | 'f16'): Float32Array {
  const out = new Float32Array(count);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = (state >>> 0) / 2 ** 31 - 1;
  }
  return dtype === 'f16' ? roundToF16(out) : out;
}

function describe(product: SelfCheckProduct): string {
  const flags = [product.transposeA && 'a^T', product.transposeB && 'b^T', product.bias && 'bias'];
  return `[${product.a.join(', ')}] x [${product.b.join(', ')}]${flags
    .filter(Boolean)
    .map((f) => ` ${f}`)
    .join('')}`;
}

/**
 * Runs the products through `run` and compares every element with the float64 reference: f32
 * within 1e-5 (absolute and relative; tf32-style reduced-precision multiplies fail it), f16 within
 * about one f16 unit of the rounded reference. A kernel that fails to compile or raises a GPU
 * error fails the check with the error's message; the device stays usable.
 */
export async function selfCheckMatmul(
  device: Device,
  run: CandidateMatmul,
  dtype: 'f32' | 'f16',
  tile: CheckTile,
): Promise<{ passed: boolean; reason: string }> {
  const products = selfCheckProducts(tile);
  for (const [index, product] of products.entries()) {
    const label = `product ${index + 1} of ${products.length} (${dtype} ${describe(product)})`;
    const aData = values(sizeOf(product.a), 3 * index + 1, dtype);
    const bData = values(sizeOf(product.b), 3 * index + 2, dtype);
    const n = product.transposeB ? product.b[product.b.length - 2] : product.b[product.b.length - 1];
    const biasData = product.bias ? values(n, 3 * index + 3, dtype) : undefined;
    const options = { transposeA: Boolean(product.transposeA), transposeB: Boolean(product.transposeB) };
    const expected = matmulReference(aData, product.a, bData, product.b, { ...options, bias: biasData });
    const want = dtype === 'f16' ? roundToF16(expected.data) : expected.data;
    let got: ArrayLike<number>;
    try {
      got = await device.scope(async () => {
        const a = device.fromArray(aData, product.a, dtype);
        const b = device.fromArray(bData, product.b, dtype);
        const bias = biasData ? device.fromArray(biasData, [n], dtype) : null;
        const out = await run(a, b, { ...options, bias });
        if (out.shape.join(',') !== expected.shape.join(',')) {
          throw new Error(`output shape [${out.shape.join(', ')}], want [${expected.shape.join(', ')}]`);
        }
        return out.toArray();
      });
    } catch (error) {
      // Drain anything else the failed kernel left (an invalid pipeline's dispatch errors).
      await device.sync().catch(() => undefined);
      return { passed: false, reason: `${label} failed to run: ${(error as Error).message}` };
    }
    for (let i = 0; i < want.length; i++) {
      const tolerance = dtype === 'f16' ? 1.2e-3 * Math.abs(want[i]) + 1e-4 : 1e-5 * Math.abs(want[i]) + 1e-5;
      if (!(Math.abs(got[i] - want[i]) <= tolerance)) {
        return {
          passed: false,
          reason: `${label}: element ${i} is ${got[i]}, the float64 reference ${want[i]}`,
        };
      }
    }
  }
  return {
    passed: true,
    reason: `${products.length} ${dtype} products around its ${tile.rows} x ${tile.cols} x ${tile.depth} tile match the float64 reference`,
  };
}
