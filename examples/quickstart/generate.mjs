// Writes the quickstart's model definition and dataset: node examples/quickstart/generate.mjs [DIR]
// (default: beside this script, where the committed copies live; a test checks they match).
// Everything is derived from fixed seeds, so the files in the repository are what this prints:
//   model/  a tiny Llama (config.json) with a byte-level tokenizer (tokenizer.json): no weights;
//           `train_from_scratch: true` draws them from the training config's seed.
//   data/   quickstart_facts: questions about made-up creatures, answerable only after training.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = process.argv[2] ?? dirname(fileURLToPath(import.meta.url));
const json = (value) => `${JSON.stringify(value, null, 2)}\n`;

// ---- The tokenizer: GPT-2's byte-level alphabet with no merges (one token per byte), after
// three special tokens. Any text encodes; 259 ids in all.
const SPECIALS = ['<pad>', '<s>', '</s>'];
function byteAlphabet() {
  // GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map above U+0100.
  const printable = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const symbols = new Map(printable.map((b) => [b, String.fromCharCode(b)]));
  let next = 0;
  for (let b = 0; b < 256; b++) if (!symbols.has(b)) symbols.set(b, String.fromCharCode(256 + next++));
  return [...Array(256).keys()].map((b) => symbols.get(b));
}
const vocab = Object.fromEntries(SPECIALS.map((token, id) => [token, id]));
for (const [b, symbol] of byteAlphabet().entries()) vocab[symbol] = SPECIALS.length + b;
const tokenizer = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: SPECIALS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })),
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
  post_processor: null,
  decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges: [],
  },
};
const vocabSize = SPECIALS.length + 256;

// ---- The model: a tiny Llama, ~0.1M parameters. Its weights are drawn from the training config's
// `seed` (train_from_scratch); initializer_range 0.2 (not 0.02) gives the tied embedding enough
// scale that a frozen random base still lets LoRA reach confident answers.
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 176,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  head_dim: 16,
  vocab_size: vocabSize,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  initializer_range: 0.2,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
  attention_bias: false,
  mlp_bias: false,
  torch_dtype: 'float32',
};

// ---- The data: three questions about each of eight made-up creatures; the answers are drawn
// from a seeded generator, so no model could know them before training.
function seeded(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}
const random = seeded(7);
const pick = (list) => list[Math.floor(random() * list.length)];
const CREATURES = ['zib', 'plonk', 'quorra', 'vell', 'drim', 'skaa', 'mulb', 'treng'];
const QUESTIONS = [
  { ask: (name) => `What color is a ${name}?`, answers: ['blue', 'red', 'green', 'gold', 'gray', 'pink'] },
  {
    ask: (name) => `Where does a ${name} live?`,
    answers: ['caves', 'trees', 'lakes', 'hills', 'sand', 'snow'],
  },
  { ask: (name) => `What does a ${name} eat?`, answers: ['moss', 'fish', 'seeds', 'rocks', 'bugs', 'fruit'] },
];
const facts = [];
for (const name of CREATURES) {
  for (const question of QUESTIONS)
    facts.push({ instruction: question.ask(name), input: '', output: pick(question.answers) });
}
const datasetInfo = { quickstart_facts: { file_name: 'facts.json', formatting: 'alpaca' } };

mkdirSync(join(here, 'model'), { recursive: true });
mkdirSync(join(here, 'data'), { recursive: true });
writeFileSync(join(here, 'model/config.json'), json(config));
writeFileSync(
  join(here, 'model/generation_config.json'),
  json({ bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 }),
);
writeFileSync(join(here, 'model/tokenizer.json'), json(tokenizer));
writeFileSync(
  join(here, 'model/tokenizer_config.json'),
  json({
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    add_bos_token: false,
    add_eos_token: false,
    model_max_length: 128,
  }),
);
writeFileSync(join(here, 'data/facts.json'), json(facts));
writeFileSync(join(here, 'data/dataset_info.json'), json(datasetInfo));
console.log(
  `wrote ${join(here, 'model')} (vocab ${vocabSize}) and ${facts.length} facts in ${join(here, 'data')}`,
);
