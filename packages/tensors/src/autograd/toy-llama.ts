import type { DifferentiableFunctions } from './functions.js';

/*
 * Test and benchmark support (not exported from the package): a Llama decoder written with the
 * differentiable functions of any backend, the same lines for the float64 reference and the GPU.
 * It follows tools/golden/llama_block.py line by line. Weight names are the fixture's keys;
 * linear weights are [out, in] as in PyTorch, applied as x @ w^T.
 */

export interface LlamaShape {
  batch: number;
  seq: number;
  dim: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  vocab: number;
  eps: number;
}

export interface LlamaLayer<T> {
  attention_norm: T;
  wq: T;
  wk: T;
  wv: T;
  wo: T;
  mlp_norm: T;
  w_gate: T;
  w_up: T;
  w_down: T;
}

export interface LlamaParams<T> {
  embedding: T;
  layers: LlamaLayer<T>[];
  final_norm: T;
  /** Absent: the head is tied to the embedding. */
  lm_head?: T;
}

/** cos and sin tables [seq, headDim / 2] of rotate-half RoPE, in float64. */
export function ropeTables(
  seq: number,
  headDim: number,
  base: number,
): { cos: Float64Array; sin: Float64Array } {
  const half = headDim / 2;
  const cos = new Float64Array(seq * half);
  const sin = new Float64Array(seq * half);
  for (let s = 0; s < seq; s++) {
    for (let i = 0; i < half; i++) {
      const angle = s / base ** ((2 * i) / headDim);
      cos[s * half + i] = Math.cos(angle);
      sin[s * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

const linear = <T extends object>(ag: DifferentiableFunctions<T>, x: T, weight: T) =>
  ag.matmul(x, weight, { transposeB: true });

/** One decoder layer on h [batch, seq, dim]: pre-norm GQA attention with RoPE, then a SwiGLU MLP. */
export function llamaLayer<T extends object>(
  ag: DifferentiableFunctions<T>,
  layer: LlamaLayer<T>,
  h: T,
  tables: { cos: T; sin: T },
  shape: LlamaShape,
): T {
  const { batch, seq, dim, heads, kvHeads, eps } = shape;
  const headDim = dim / heads;
  const a = ag.rmsNorm(h, layer.attention_norm, eps);
  const split = (x: T, count: number) => ag.reshape(x, [batch, seq, count, headDim]);
  const q = ag.rotary(split(linear(ag, a, layer.wq), heads), tables.cos, tables.sin, { style: 'half' });
  const k = ag.rotary(split(linear(ag, a, layer.wk), kvHeads), tables.cos, tables.sin, { style: 'half' });
  const v = split(linear(ag, a, layer.wv), kvHeads);
  const { output } = ag.attention(q, k, v, { causal: true });
  const h1 = ag.add(h, linear(ag, ag.reshape(output, [batch, seq, dim]), layer.wo));
  const m = ag.rmsNorm(h1, layer.mlp_norm, eps);
  const gated = ag.swiglu(linear(ag, m, layer.w_gate), linear(ag, m, layer.w_up));
  return ag.add(h1, linear(ag, gated, layer.w_down));
}

/**
 * Mean cross-entropy of the next-token logits: embedding, the layers (each optionally wrapped,
 * e.g. by gradient checkpointing), final norm, LM head (tied when params.lm_head is absent).
 */
export function llamaLoss<T extends object>(
  ag: DifferentiableFunctions<T>,
  params: LlamaParams<T>,
  ids: T,
  labels: T,
  tables: { cos: T; sin: T },
  shape: LlamaShape,
  wrapLayer: (run: (h: T) => T, h: T) => T = (run, h) => run(h),
): T {
  let h = ag.embedding(params.embedding, ids);
  for (const layer of params.layers) h = wrapLayer((x) => llamaLayer(ag, layer, x, tables, shape), h);
  const logits = linear(ag, ag.rmsNorm(h, params.final_norm, shape.eps), params.lm_head ?? params.embedding);
  const rows = shape.batch * shape.seq;
  return ag.crossEntropy(ag.reshape(logits, [rows, shape.vocab]), ag.reshape(labels, [rows])).loss;
}
