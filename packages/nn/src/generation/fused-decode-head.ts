import {
  type Device,
  decodeArgmax,
  decodeHead,
  decodeSoftcap,
  type PackedWeight,
  type Tensor,
} from '@webtune/tensors';

/** What the fused decoder's head reads and writes. */
export interface FusedHeadParts {
  /** [batch, hidden]: each row's last hidden state. */
  hidden: Tensor;
  /** [vocab, hidden]: lm_head (f32 or packed). */
  head: Tensor | PackedWeight;
  finalNorm: Tensor;
  finalEps: number;
  /** [batch, vocab]. */
  logits: Tensor;
  /** The greedy choice: ids [batch] (the next step's input) and the token log. */
  ids: Tensor;
  tokens: Tensor;
  /** Gemma 2's final logit soft-cap; null: none. */
  finalSoftcap: number | null;
}

/**
 * Final norm + head of `hidden` into `logits` (soft-capped where Gemma 2 caps them) and, with
 * `argmaxAt`, the greedy choice into `ids` and the token log at that step. decodeHead's streaming
 * head keeps the argmax's candidates as it reads the head; after a soft-cap (which may tie values
 * it saturates) the argmax reads the capped logits instead.
 */
export function encodeFusedHead(device: Device, parts: FusedHeadParts, argmaxAt?: number): void {
  const cap = parts.finalSoftcap;
  const choose = argmaxAt === undefined ? null : { ids: parts.ids, tokens: parts.tokens, at: argmaxAt };
  decodeHead(device, {
    x: parts.hidden,
    weight: parts.head,
    norm: { weight: parts.finalNorm, eps: parts.finalEps },
    out: parts.logits,
    ...(choose && cap === null ? { argmax: choose } : {}),
  });
  if (cap !== null) decodeSoftcap(device, parts.logits, cap);
  if (choose && cap !== null) decodeArgmax(device, parts.logits, choose.ids, choose.tokens, choose.at);
}
