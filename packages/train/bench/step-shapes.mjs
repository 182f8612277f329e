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

/**
 * A bench script's `--name=value` options and its `--shape=` (one of STEP_SHAPES, else `fallback`);
 * an unknown shape ends the process with the list of known ones.
 */
export function benchShape(script, fallback, args = process.argv.slice(2)) {
  const option = (name) => args.findLast((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const shapeName = option('shape') ?? fallback;
  const shape = STEP_SHAPES[shapeName];
  if (!shape) {
    console.error(`${script}: unknown --shape=${shapeName} (${Object.keys(STEP_SHAPES).join(', ')})`);
    process.exit(2);
  }
  return { option, shapeName, shape };
}

/** The generation benches' model config for a shape (random weights; tied head, bos 1, eos 2). */
export function generationConfig(createModelConfig, shape) {
  return createModelConfig({
    ...shape.config,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 512,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
}

/** The generation benches' prompt: bos, then `length - 1` ids spread over the vocabulary. */
export function benchPrompt(config, length) {
  return [1, ...Array.from({ length: length - 1 }, (_, i) => 3 + ((i * 7919) % (config.vocabSize - 3)))];
}
