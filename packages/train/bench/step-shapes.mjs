// The two shapes the training-step benches share (versus-transformers.mjs, profile-step.mjs):
// stories260K and the stories15M shape with random weights, each with its batch and sequence.
export const STEP_SHAPES = {
  stories260K: {
    config: {
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 5,
      numAttentionHeads: 8,
      numKeyValueHeads: 4,
      vocabSize: 512,
    },
    batch: 8,
    seq: 256,
  },
  stories15M: {
    config: {
      hiddenSize: 288,
      intermediateSize: 768,
      numHiddenLayers: 6,
      numAttentionHeads: 6,
      numKeyValueHeads: 6,
      vocabSize: 32000,
    },
    batch: 4,
    seq: 256,
    // The classifier's logits (1024 x 32000 f32) are computed and differentiated 256 rows at a time.
    chunkRows: 256,
  },
};
