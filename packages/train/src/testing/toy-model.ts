import { CausalLM, createModelConfig, initializeModel } from '@webtune/nn';
import { autograd, type Device, rand, type Tensor } from '@webtune/tensors';
import type { TrainableModel } from '../model/trainable-model.js';

/**
 * A tiny bigram language model for the trainer's own tests (fast on a software adapter):
 * h = rmsNorm(tanh(embed[ids] W^T + b)) * g, logits = h H^T. Every parameter trains, and the
 * names follow Hugging Face's pattern so weight-decay exclusion applies (norm, bias).
 */
export function toyModel(
  device: Device,
  options: { vocab?: number; hidden?: number; seed?: number } = {},
): TrainableModel & {
  parameters: [string, Tensor][];
  dispose(): void;
} {
  const vocab = options.vocab ?? 16;
  const hidden = options.hidden ?? 8;
  const seed = options.seed ?? 1;
  const uniform = (shape: number[], offset: number, bound: number) =>
    rand(device, shape, { seed: seed * 31 + offset, low: -bound, high: bound }).keep();
  const parameters: [string, Tensor][] = [
    ['model.embed_tokens.weight', uniform([vocab, hidden], 1, 1)],
    ['model.mix.weight', uniform([hidden, hidden], 2, 0.5)],
    ['model.mix.bias', uniform([hidden], 3, 0.1)],
    ['model.norm.weight', device.fromArray(new Array(hidden).fill(1), [hidden], 'f32').keep()],
    ['lm_head.weight', uniform([vocab, hidden], 4, 0.5)],
  ];
  const get = (name: string) => parameters.find(([n]) => n === name)![1];
  return {
    device,
    hiddenSize: hidden,
    parameters,
    hiddenStates(ids) {
      const embedded = autograd.embedding(get('model.embed_tokens.weight'), ids);
      const mixed = autograd.tanh(
        autograd.matmul(embedded, get('model.mix.weight'), { transposeB: true, bias: get('model.mix.bias') }),
      );
      return autograd.rmsNorm(mixed, get('model.norm.weight'), 1e-5);
    },
    head: (h) => autograd.matmul(h, get('lm_head.weight'), { transposeB: true }),
    trainableParameters: () => parameters,
    dispose: () => {
      for (const [, tensor] of parameters) tensor.dispose();
    },
  };
}

/** Rows of a cyclic token pattern: the next token is always (token * 3 + 1) % vocab. */
export function patternRows(count: number, length: number, vocab = 16, promptTokens = 1) {
  return Array.from({ length: count }, (_, r) => {
    const inputIds: number[] = [r % vocab];
    while (inputIds.length < length) inputIds.push((inputIds[inputIds.length - 1] * 3 + 1) % vocab);
    const labels = inputIds.map((id, t) => (t < promptTokens ? -100 : id));
    return { inputIds, labels };
  });
}

/**
 * A tiny Llama (hidden 16, two heads sharing one KV head, the 16-token vocabulary of `patternRows`) with
 * the same seeded weights on every call.
 */
export function tinyLlama(device: Device, layers: number): CausalLM {
  const config = createModelConfig({
    hiddenSize: 16,
    intermediateSize: 24,
    numHiddenLayers: layers,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    vocabSize: 16,
  });
  return initializeModel(new CausalLM(device, config), { seed: 5, std: 0.3 });
}
