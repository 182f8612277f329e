import type { ModelConfig } from '@webtune/nn';

/**
 * What sets a family's layers apart for the memory plan (all optional: a shape without them is a
 * Llama-like layer). A full ModelConfig carries them. Gemma 2's soft-capped attention adds
 * nothing: the cap runs inside the fused attention kernel, which keeps no [seq, seq] scores.
 */
export type PlanArchitectureFacts = Partial<Pick<ModelConfig, 'fusedProjections' | 'qkNorm' | 'postNorms'>>;

export type PlanLayerShape = Pick<
  ModelConfig,
  'hiddenSize' | 'intermediateSize' | 'numAttentionHeads' | 'numKeyValueHeads' | 'headDim'
> &
  PlanArchitectureFacts;

/**
 * [out, in] of the linear layers of one decoder layer, in LoRA's target order: q, k, v, o, gate,
 * up, down; Phi-3's fused qkv_proj, o_proj, gate_up_proj and down_proj.
 */
export function layerProjections(m: PlanLayerShape): [number, number][] {
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
export function layerNorms(m: PlanLayerShape): { hidden: number; head: number } {
  return { hidden: m.postNorms ? 4 : 2, head: m.qkNorm ? 2 : 0 };
}
