/**
 * Property-based fuzzing of the config.json reader (issue 19): any JSON, and valid configs with
 * fields replaced by hostile values, give a config within MODEL_CONFIG_LIMITS or a ModelError,
 * each at once (nothing is allocated from the numbers). Bounded for CI.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../errors.js';
import { estimateParameterCount, MODEL_CONFIG_LIMITS, parseModelConfig } from './model-config.js';

const RUNS = 1500;
const BASE = {
  architectures: ['LlamaForCausalLM'],
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  vocab_size: 512,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
};
const FIELDS = [
  ...Object.keys(BASE),
  'head_dim',
  'rope_scaling',
  'rope_theta',
  'tie_word_embeddings',
  'eos_token_id',
  'sliding_window',
  'max_window_layers',
  'hidden_act',
  'model_type',
];

function parsesOrRefuses(source: string | Record<string, unknown>): boolean {
  const started = performance.now();
  try {
    const config = parseModelConfig(source as never, 'fuzz/config.json');
    if (config.numHiddenLayers > MODEL_CONFIG_LIMITS.numHiddenLayers) return false;
    if (estimateParameterCount(config) > MODEL_CONFIG_LIMITS.parameters) return false;
  } catch (error) {
    if (!(error instanceof ModelError)) throw new Error(`untyped error: ${(error as Error).stack}`);
  }
  // Generous for a loaded CI machine; building from the numbers would take minutes.
  return performance.now() - started < 1000;
}

describe('config.json reader fuzz', () => {
  it(`any JSON and hostile field values: a bounded config or a ModelError (${RUNS} x 2 cases)`, () => {
    let cases = 0;
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string({ maxLength: 40 })), (text) => {
        cases++;
        return parsesOrRefuses(text);
      }),
      { numRuns: RUNS, seed: 19 },
    );
    const hostile = fc.oneof(
      fc.integer(),
      fc.constantFrom(0, -1, 1e9, 2 ** 31, 2 ** 53, 1e308, 0.5, Number.NaN, '64', true, null, [], {}),
      fc.jsonValue({ maxDepth: 2 }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...FIELDS), hostile, { maxKeys: 4 }), (changes) => {
        cases++;
        return parsesOrRefuses({ ...BASE, ...changes });
      }),
      { numRuns: RUNS, seed: 19 },
    );
    expect(cases).toBe(2 * RUNS);
    console.log(`config.json reader fuzz: ${cases} cases, 0 untyped errors`);
  });
});
