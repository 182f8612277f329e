import { matmulReference } from '../lora/reference.js';

/*
 * The meaning of a bottleneck adapter in plain float64 TypeScript, forward and hand-written
 * gradients, for checking the GPU layer and its recorded backward.
 */

type ActivationName = 'relu' | 'silu' | 'gelu' | 'tanh';

/** erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7: enough next to float32). */
function erf(z: number): number {
  const sign = Math.sign(z);
  const t = 1 / (1 + 0.3275911 * Math.abs(z));
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-z * z));
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** f(z) and f'(z) of each nonlinearity (gelu is the exact, erf form). */
export const ACTIVATION_REFERENCE: Record<ActivationName, { f(z: number): number; df(z: number): number }> = {
  relu: { f: (z) => Math.max(z, 0), df: (z) => (z > 0 ? 1 : 0) },
  silu: { f: (z) => z * sigmoid(z), df: (z) => sigmoid(z) * (1 + z * (1 - sigmoid(z))) },
  gelu: {
    f: (z) => 0.5 * z * (1 + erf(z / Math.SQRT2)),
    df: (z) => 0.5 * (1 + erf(z / Math.SQRT2)) + (z * Math.exp(-0.5 * z * z)) / Math.sqrt(2 * Math.PI),
  },
  tanh: { f: Math.tanh, df: (z) => 1 - Math.tanh(z) ** 2 },
};

export interface BottleneckReferenceInput {
  /** The block's output h [rows, hidden]. */
  h: Float64Array;
  rows: number;
  hidden: number;
  size: number;
  /** down [size, hidden], downBias [size], up [hidden, size], upBias [hidden]. */
  down: Float64Array;
  downBias: Float64Array;
  up: Float64Array;
  upBias: Float64Array;
  activation: ActivationName;
  scaling: number;
}

/** y = h + scaling * (act(h D^T + d) U^T + u), and the gradients of h, D, d, U, u. */
export function bottleneckReference(input: BottleneckReferenceInput, gradOutput: Float64Array) {
  const { h, rows, hidden, size, down, downBias, up, upBias, activation, scaling } = input;
  const { f, df } = ACTIVATION_REFERENCE[activation];
  const z = matmulReference(h, down, rows, hidden, size, false, true);
  for (let i = 0; i < rows; i++) for (let j = 0; j < size; j++) z[i * size + j] += downBias[j];
  const a = z.map(f);
  const u = matmulReference(a, up, rows, size, hidden, false, true);
  const output = new Float64Array(rows * hidden);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < hidden; j++)
      output[i * hidden + j] = h[i * hidden + j] + scaling * (u[i * hidden + j] + upBias[j]);
  }
  const g = gradOutput;
  const gradUpBias = new Float64Array(hidden);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < hidden; j++) gradUpBias[j] += scaling * g[i * hidden + j];
  const gradUp = matmulReference(g, a, hidden, rows, size, true, false).map((v) => v * scaling);
  const gradA = matmulReference(g, up, rows, hidden, size).map((v) => v * scaling);
  const gradZ = gradA.map((v, i) => v * df(z[i]));
  const gradDownBias = new Float64Array(size);
  for (let i = 0; i < rows; i++) for (let j = 0; j < size; j++) gradDownBias[j] += gradZ[i * size + j];
  const gradDown = matmulReference(gradZ, h, size, rows, hidden, true, false);
  const gradH = matmulReference(gradZ, down, rows, size, hidden);
  for (let i = 0; i < gradH.length; i++) gradH[i] += g[i];
  return {
    output,
    grads: { h: gradH, down: gradDown, downBias: gradDownBias, up: gradUp, upBias: gradUpBias },
  };
}
