/** LLaMA-Factory's DataArguments as webtune reads them. */
import { ignored, SINGLE_DEVICE, supported, TEXT_ONLY, unsupported } from './key-spec.js';

export const DATA_KEYS = {
  dataset: supported('dataset', 'list', undefined, {
    note: 'names in dataset_dir/dataset_info.json or file paths, comma-separated (required)',
  }),
  eval_dataset: supported('dataset', 'list', null),
  dataset_dir: supported('dataset', 'string', 'data'),
  media_dir: ignored('dataset', 'string', TEXT_ONLY, null),
  template: supported('dataset', 'string', null, {
    note: "a LLaMA-Factory template name, or auto for the tokenizer's Jinja chat_template; absent: as LLaMA-Factory (the chat_template parsed, else empty)",
  }),
  cutoff_len: supported('dataset', 'integer', 2048),
  train_on_prompt: supported('dataset', 'boolean', false),
  mask_history: supported('dataset', 'boolean', false),
  streaming: supported('dataset', 'boolean', false, {
    note: 'read datasets lazily (JSON lines, CSV, parquet row groups), tokenize on the fly; needs max_steps',
  }),
  buffer_size: supported('dataset', 'integer', 16384, {
    note: 'streaming: rows in the shuffle buffer (the most rows held in memory)',
  }),
  mix_strategy: supported('dataset', 'string', 'concat', {
    choices: ['concat', 'interleave_under', 'interleave_over'],
  }),
  interleave_probs: supported('dataset', 'number-or-list', null),
  overwrite_cache: ignored('dataset', 'boolean', 'there is no preprocessing cache', false),
  preprocessing_batch_size: ignored('dataset', 'integer', 'preprocessing runs in one pass', 1000),
  preprocessing_num_workers: ignored('dataset', 'integer', 'preprocessing runs in one pass', null),
  max_samples: supported('dataset', 'integer', null),
  eval_num_beams: ignored('dataset', 'integer', 'generation is greedy or sampled', null),
  ignore_pad_token_for_loss: ignored('dataset', 'boolean', 'padding is never trained on', true),
  val_size: supported('dataset', 'number', 0),
  eval_on_each_dataset: unsupported(
    'dataset',
    'boolean',
    'evaluation runs on all validation rows together',
    false,
  ),
  packing: supported('dataset', 'boolean', null, {
    note: "pt: concatenate documents into cutoff_len blocks (default on); sft: pack examples into cutoff_len - 1 tokens with LLaMA-Factory's greedy knapsack, position ids restarting per example",
  }),
  neat_packing: supported('dataset', 'boolean', false, {
    note: 'sft packing where packed examples never attend to each other (block-diagonal causal attention); implies packing',
  }),
  tool_format: supported('dataset', 'string', null, {
    note: "LLaMA-Factory's tool-call format (default, glm4, llama3, mistral, qwen) instead of the template's",
  }),
  default_system: supported('dataset', 'string', null, {
    note: 'the system prompt of rows that give none',
  }),
  enable_thinking: supported('dataset', 'boolean', true),
  tokenized_path: unsupported('dataset', 'string', 'there is no tokenized cache', null),
  data_shared_file_system: ignored('dataset', 'boolean', SINGLE_DEVICE, false),
  preserve_thinking: ignored('dataset', 'boolean', 'thinking in earlier turns follows the template', false),
};
