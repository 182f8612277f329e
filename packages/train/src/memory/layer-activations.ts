import { layerProjections, type PlanLayerShape } from './architecture-shapes.js';

/** LoRA on a layer, as the plan sees it: rank, how many projections it targets, DoRA, dropout. */
export interface PlanLora {
  r: number;
  targetsPerLayer: number;
  dora?: boolean;
  /** lora_dropout > 0: the dropped input of each target is a tensor of its own, kept for backward. */
  dropout?: boolean;
  /**
   * modules_to_save / additional_target: the token table and the head trained whole. Each is an
   * f32 [vocab, hidden] copy (decoded from a packed base) with its gradient and AdamW moments.
   */
  trainedTables?: { embedding?: boolean; head?: boolean };
}

/**
 * The tensors one decoder layer's training forward creates, as f32 values per token (one entry
 * per tensor, so each can be rounded up to the buffer pool's size class on its own).
 *
 * `kept`: what the tape holds for backward once the layer's scope closes (each op saves only what
 * its backward reads): the two norms' outputs, the residual after attention (the second norm's
 * input) and the layer's output (the next norm's input); q and k after rotary and v, the attention
 * output and its logsumexp; gate, up and their product; each LoRA target's A x. Qwen3 / Gemma 3's
 * q/k norms keep their inputs; Gemma's post norms keep theirs.
 *
 * `transient`: what else lives until the layer's scope closes (the forward's peak is at the end
 * of the last layer): each projection's output, and under plain LoRA also the sum
 * base + s B (A x), which one product writes (the scale and the add in the matmul's epilogue,
 * peft's linearOnto): 2 outputs per target. DoRA still makes B A x, its scaled copy, the factors'
 * products and the sums (8 outputs per target). q/k norm outputs; post-norm outputs; Phi-3's
 * slices of its fused outputs. Reshapes are views and allocate nothing.
 *
 * `keptHalf`: for each kept tensor, whether f16 kept activations store it in half precision
 * (the rule of HALF_SAVED_POLICY: never a norm's input, the gated product or a logsumexp).
 */
export function layerActivationWidths(
  m: PlanLayerShape,
  lora: PlanLora | null,
): { kept: number[]; transient: number[]; keptHalf: boolean[] } {
  const H = m.hiddenSize;
  const I = m.intermediateSize;
  const qDim = m.numAttentionHeads * m.headDim;
  const kvDim = m.numKeyValueHeads * m.headDim;
  const kept = [H, H, H, H, qDim, kvDim, kvDim, qDim, m.numAttentionHeads, I, I, I];
  // Under f16 kept activations (HALF_SAVED_POLICY, docs/architecture/precision.md): the norms'
  // outputs, q, k, v, the attention output, gate and up go f16; the residual stream (both norms'
  // inputs), the logsumexp and the gated product stay f32.
  const keptHalf = [true, true, false, false, true, true, true, true, false, true, true, false];
  const transient: number[] = [];
  const projections = layerProjections(m);
  // v and the MLP's gate/up are kept as they come out of their projection (no norm, no rotary
  // between): v's, gate's and up's output tensors are already counted in `kept`.
  // Under q/k norms, q's and k's outputs are the norms' inputs and are kept too; under post
  // norms, o's and down's.
  const keptOutputs = new Set<number>();
  if (!m.fusedProjections) {
    for (const index of [2, 4, 5]) keptOutputs.add(index);
    if (m.qkNorm) keptOutputs.add(0).add(1);
    if (m.postNorms) keptOutputs.add(3).add(6);
  }
  // o and down outputs feed the residual adds (post norms: the norm) and are transient.
  projections.forEach(([out, inFeatures], index) => {
    const targeted = lora !== null && index < lora.targetsPerLayer;
    // The projection's own output, unless it is the kept tensor itself.
    // Plain LoRA: the base output and base + s B (A x) from one fused product.
    const outputs = targeted ? (lora.dora ? 8 : 2) : 1;
    const counted = keptOutputs.has(index) ? outputs - 1 : outputs;
    for (let k = 0; k < counted; k++) transient.push(out);
    if (targeted) {
      kept.push(lora.r);
      // A x stays f32 (too narrow to be worth its casts).
      keptHalf.push(false);
      // DoRA multiplies the base output and the scaled adapter output by per-row factors:
      // both products' tensor inputs are kept.
      if (lora.dora) {
        kept.push(out, out);
        keptHalf.push(true, true);
      }
      if (lora.dropout) {
        kept.push(inFeatures);
        keptHalf.push(true);
      }
    }
  });
  if (m.qkNorm) {
    // The norms' inputs (q and k as projected) are kept; their outputs go into rotary.
    kept.push(qDim, kvDim);
    keptHalf.push(false, false);
    transient.push(qDim, kvDim);
  }
  if (m.postNorms) {
    // The post norms' inputs (o's and down's outputs) are kept; their outputs go into the adds.
    kept.push(H, H);
    keptHalf.push(false, false);
    transient.push(H, H);
  }
  if (m.fusedProjections) {
    // q, k and v are sliced out of qkv_proj's output, gate and up out of gate_up_proj's.
    transient.push(qDim, kvDim, kvDim, I, I);
  }
  return { kept, transient, keptHalf };
}
