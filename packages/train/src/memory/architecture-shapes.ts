import type { ModelConfig } from '@webtune/nn';

/**
 * What sets a family's layers apart for the memory plan (all optional: a shape without them is a
 * Llama-like layer). A full ModelConfig carries them. Gemma 2's soft-capped attention adds
 * nothing: the cap runs inside the fused attention kernel, which keeps no [seq, seq] scores.
 */
export type PlanArchitectureFacts = Partial<Pick<ModelConfig, 'fusedProjections' | 'qkNorm' | 'postNorms'>>;

type LayerShape = Pick<
  ModelConfig,
  'hiddenSize' | 'intermediateSize' | 'numAttentionHeads' | 'numKeyValueHeads' | 'headDim'
> &
  PlanArchitectureFacts;

/**
 * [out, in] of the linear layers of one decoder layer, in LoRA's target order: q, k, v, o, gate,
 * up, down; Phi-3's fused qkv_proj, o_proj, gate_up_proj and down_proj.
 */
export function layerProjections(m: LayerShape): [number, number][] {
  const H = m.hiddenSize;
  const I = m.intermediateSize;
  const qDim = m.numAttentionHeads * m.headDim;
  const kvDim = m.numKeyValueHeads * m.headDim;
  if (m.fusedProjections) {
    return [
      [qDim + 2 * kvDim, H],
      [H, qDim],
      [2 * I, H],
      [H, I],
    ];
  }
  return [
    [qDim, H],
    [kvDim, H],
    [kvDim, H],
    [H, qDim],
    [I, H],
    [I, H],
    [H, I],
  ];
}

/** Norm weight vectors of one layer: [count of hidden-wide ones, count of head-wide ones]. */
export function layerNorms(m: LayerShape): { hidden: number; head: number } {
  return { hidden: m.postNorms ? 4 : 2, head: m.qkNorm ? 2 : 0 };
}

/**
 * f32 values per token a layer keeps for backward beyond a Llama layer's: Gemma's two extra norms
 * (input and output each), Phi-3's fused outputs before they are sliced (q, k, v and gate, up
 * again), Gemma 3 / Qwen3's q/k norm outputs.
 */
export function extraActivationsPerToken(m: LayerShape): number {
  const qDim = m.numAttentionHeads * m.headDim;
  const kvDim = m.numKeyValueHeads * m.headDim;
  let extra = 0;
  if (m.postNorms) extra += 4 * m.hiddenSize;
  if (m.fusedProjections) extra += qDim + 2 * kvDim + 2 * m.intermediateSize;
  if (m.qkNorm) extra += qDim + kvDim;
  return extra;
}
