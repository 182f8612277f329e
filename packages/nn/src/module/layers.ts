import type { Tensor } from '../functional.js';
import * as F from '../functional.js';
import { Module } from './module.js';

/** Any module that maps [..., in] to [..., out]: a Linear, or an adapter wrapping one. */
export interface LinearLike extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  forward(x: Tensor): Tensor;
}

/** y = x W^T + b with `weight` [out, in] and an optional `bias` [out] (PyTorch's nn.Linear). */
export class Linear extends Module implements LinearLike {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly hasBias: boolean,
  ) {
    super();
    this.declareParameter('weight', [outFeatures, inFeatures]);
    if (hasBias) this.declareParameter('bias', [outFeatures]);
  }

  forward(x: Tensor): Tensor {
    const bias = this.hasBias ? this.parameter('bias') : null;
    const packed = this.packedParameter('weight');
    if (packed) return F.packedLinear(x, packed, bias);
    return F.linear(x, this.parameter('weight'), bias);
  }
}

/** A lookup table `weight` [vocab, dim]. */
export class Embedding extends Module {
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
  ) {
    super();
    this.declareParameter('weight', [numEmbeddings, embeddingDim]);
  }

  forward(ids: Tensor): Tensor {
    // A frozen packed table (a quantized or half-precision base) is read by a gather that decodes
    // the rows in the kernel; it takes no gradient.
    const packed = this.packedParameter('weight');
    if (packed) return F.packedEmbedding(packed, ids);
    return F.embedding(this.parameter('weight'), ids);
  }
}

/**
 * Root-mean-square normalisation over the last axis with a learned `weight` [dim]. With
 * `addsOne` (Gemma) the scale is (1 + weight), so a zero weight is the identity.
 */
export class RMSNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps: number,
    readonly addsOne = false,
  ) {
    super();
    this.declareParameter('weight', [dim]);
  }

  forward(x: Tensor): Tensor {
    const weight = this.parameter('weight');
    return F.rmsNorm(x, this.addsOne ? F.add(weight, 1) : weight, this.eps);
  }
}
