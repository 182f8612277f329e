/**
 * The keys of a LLaMA-Factory training config (its ModelArguments, DataArguments,
 * FinetuningArguments, GeneratingArguments and Transformers' TrainingArguments) as webtune reads
 * them: which it uses, which it accepts without effect, and which it knows but does not support.
 */

export type KeyType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'list'
  | 'string-or-boolean'
  | 'number-or-list';

export type KeyStatus =
  /** Read and used. */
  | 'supported'
  /** Accepted and without effect here (the note says why); configs that set it still run. */
  | 'ignored'
  /** Known, but the feature does not exist in webtune: an error unless the value is neutral. */
  | 'unsupported';

export interface KeySpec {
  section: 'model' | 'method' | 'dataset' | 'output' | 'train' | 'eval' | 'predict';
  type: KeyType;
  status: KeyStatus;
  /** The value used when the key is absent (LLaMA-Factory's default unless noted). */
  default?: unknown;
  /** Allowed values (strings). */
  choices?: readonly string[];
  /** Values of `choices` that are known but not supported. */
  unsupportedChoices?: readonly string[];
  /** Why a key is ignored or unsupported, or what it means. */
  note?: string;
}

const supported = (
  section: KeySpec['section'],
  type: KeyType,
  defaultValue?: unknown,
  extra: Partial<KeySpec> = {},
): KeySpec => ({ section, type, status: 'supported', default: defaultValue, ...extra });
const ignored = (
  section: KeySpec['section'],
  type: KeyType,
  note: string,
  defaultValue?: unknown,
): KeySpec => ({
  section,
  type,
  status: 'ignored',
  note,
  default: defaultValue,
});
const unsupported = (
  section: KeySpec['section'],
  type: KeyType,
  note: string,
  defaultValue?: unknown,
): KeySpec => ({
  section,
  type,
  status: 'unsupported',
  note,
  default: defaultValue,
});

const PRECISION = 'webtune trains in float32 on WebGPU';
const SINGLE_DEVICE = 'webtune trains on one WebGPU device';
const NO_REPORTERS =
  'webtune writes trainer_log.jsonl and training_loss.svg; there are no external reporters';
const PERFORMANCE = 'a performance switch of PyTorch back ends; webtune has its own kernels';
const TEXT_ONLY = 'webtune trains text-only models';
const HUB = 'webtune does not push to a hub; copy output_dir or use `webtune export`';
const EXPORT =
  'export is a separate command: `webtune export CONFIG.yaml` (export_dir, export_quantization_bit -> GGUF) or `webtune export --model DIR --adapter DIR --out DIR [--gguf TYPE]`';

/** Every key webtune knows, by LLaMA-Factory's name. */
export const CONFIG_KEYS: Record<string, KeySpec> = {
  // ---- model
  model_name_or_path: supported('model', 'string', undefined, {
    note: 'a Hugging Face model folder or hub id (required)',
  }),
  adapter_name_or_path: supported('model', 'string', null, {
    note: 'a PEFT adapter folder to continue training (LoRA)',
  }),
  train_from_scratch: supported('model', 'boolean', false, {
    note: 'draw the weights at random from `seed` (the folder needs only config.json and the tokenizer)',
  }),
  cache_dir: ignored('model', 'string', 'hub downloads go to $WEBTUNE_CACHE or $HF_HOME', null),
  model_revision: unsupported('model', 'string', 'only the main revision is downloaded', 'main'),
  hf_hub_token: ignored('model', 'string', 'set HF_TOKEN in the environment instead', null),
  trust_remote_code: ignored('model', 'boolean', 'webtune runs no model code from the hub', false),
  use_fast_tokenizer: ignored('model', 'boolean', 'there is one tokenizer implementation', true),
  resize_vocab: unsupported('model', 'boolean', 'the vocabulary cannot be resized', false),
  split_special_tokens: unsupported('model', 'boolean', 'special tokens are never split', false),
  new_special_tokens: unsupported('model', 'string', 'the vocabulary cannot be extended', null),
  add_tokens: unsupported('model', 'string', 'the vocabulary cannot be extended', null),
  add_special_tokens: unsupported('model', 'string', 'the vocabulary cannot be extended', null),
  low_cpu_mem_usage: ignored('model', 'boolean', 'weights always stream one tensor at a time', true),
  rope_scaling: unsupported('model', 'string', 'set rope_scaling in config.json instead', null),
  flash_attn: ignored('model', 'string', PERFORMANCE, 'auto'),
  shift_attn: unsupported(
    'model',
    'boolean',
    'shifted sparse attention (LongLoRA) is not implemented',
    false,
  ),
  mixture_of_depths: unsupported('model', 'string', 'mixture of depths is not implemented', null),
  use_unsloth: ignored('model', 'boolean', PERFORMANCE, false),
  use_unsloth_gc: ignored('model', 'boolean', PERFORMANCE, false),
  enable_liger_kernel: ignored('model', 'boolean', PERFORMANCE, false),
  moe_aux_loss_coef: ignored(
    'model',
    'number',
    'the supported architectures have no mixture of experts',
    null,
  ),
  disable_gradient_checkpointing: supported('model', 'boolean', false, {
    note: 'gradient checkpointing (recomputing layers in backward) is on unless this is true',
  }),
  use_reentrant_gc: ignored('model', 'boolean', PERFORMANCE, true),
  upcast_layernorm: ignored('model', 'boolean', PRECISION, false),
  upcast_lmhead_output: ignored('model', 'boolean', PRECISION, false),
  infer_backend: ignored('model', 'string', 'inference runs on the same WebGPU device', 'huggingface'),
  offload_folder: ignored('model', 'string', 'no offloading', 'offload'),
  use_cache: ignored('model', 'boolean', 'generation always uses a KV cache', true),
  infer_dtype: ignored('model', 'string', PRECISION, 'auto'),
  compute_dtype: ignored('model', 'string', PRECISION, null),
  print_param_status: supported('model', 'boolean', false, {
    note: 'print every parameter and whether it trains',
  }),
  quantization_bit: supported('model', 'integer', null, {
    note: '8: Q8_0 blocks, 4: Q4_0 blocks; a frozen base for LoRA (QLoRA)',
  }),
  quantization_method: ignored('model', 'string', 'webtune quantizes to its own ggml blocks', 'bitsandbytes'),
  quantization_type: supported('model', 'string', 'nf4', {
    choices: ['nf4', 'fp4'],
    note: 'both map to Q4_0 blocks',
  }),
  double_quantization: ignored('model', 'boolean', 'Q4_0/Q8_0 scales are 16-bit already', true),
  quantization_device_map: ignored('model', 'string', 'only used with quantization_bit', null),
  export_dir: unsupported('model', 'string', EXPORT, null),
  export_size: unsupported('model', 'integer', EXPORT, 5),
  export_device: ignored('model', 'string', EXPORT, 'cpu'),
  export_quantization_bit: unsupported('model', 'integer', EXPORT, null),
  export_quantization_dataset: unsupported('model', 'string', EXPORT, null),
  export_legacy_format: ignored('model', 'boolean', EXPORT, false),
  export_hub_model_id: unsupported('model', 'string', HUB, null),
  image_max_pixels: ignored('model', 'integer', TEXT_ONLY, null),
  image_min_pixels: ignored('model', 'integer', TEXT_ONLY, null),
  video_max_pixels: ignored('model', 'integer', TEXT_ONLY, null),
  video_min_pixels: ignored('model', 'integer', TEXT_ONLY, null),
  video_fps: ignored('model', 'number', TEXT_ONLY, null),
  video_maxlen: ignored('model', 'integer', TEXT_ONLY, null),
  audio_sampling_rate: ignored('model', 'integer', TEXT_ONLY, null),
  block_diag_attn: unsupported(
    'model',
    'boolean',
    'block-diagonal attention for packing is not implemented',
    false,
  ),

  // ---- method
  stage: supported('method', 'string', 'sft', {
    choices: ['pt', 'sft', 'rm', 'dpo', 'kto', 'ppo'],
    unsupportedChoices: ['kto', 'ppo'],
  }),
  do_train: ignored('method', 'boolean', '`webtune train` always trains', true),
  finetuning_type: supported('method', 'string', 'lora', {
    choices: ['lora', 'freeze', 'full', 'oft'],
    unsupportedChoices: ['oft'],
  }),
  lora_rank: supported('method', 'integer', 8),
  lora_alpha: supported('method', 'number', null, { note: 'default 2 x lora_rank' }),
  lora_dropout: supported('method', 'number', 0),
  lora_target: supported('method', 'list', 'all', { note: '"all", or module names such as q_proj,v_proj' }),
  additional_target: supported('method', 'list', null, {
    note: 'modules trained whole and saved with the adapter (modules_to_save)',
  }),
  use_rslora: supported('method', 'boolean', false),
  use_dora: supported('method', 'boolean', false),
  pissa_init: supported('method', 'boolean', false),
  pissa_iter: supported('method', 'integer', 16, {
    note: 'power iterations of the randomized SVD; -1 for the exact SVD',
  }),
  pissa_convert: unsupported(
    'method',
    'boolean',
    'saving a PiSSA adapter as plain LoRA from a training run is not wired yet',
    false,
  ),
  create_new_adapter: unsupported(
    'method',
    'boolean',
    'a second adapter on top of adapter_name_or_path is not supported',
    false,
  ),
  loraplus_lr_ratio: unsupported('method', 'number', 'LoRA+ learning rates are not implemented', null),
  loraplus_lr_embedding: ignored('method', 'number', 'only used with loraplus_lr_ratio', 1e-6),
  freeze_trainable_layers: supported('method', 'integer', 2),
  freeze_trainable_modules: supported('method', 'list', 'all'),
  freeze_extra_modules: supported('method', 'list', null),
  freeze_vision_tower: ignored('method', 'boolean', TEXT_ONLY, true),
  freeze_multi_modal_projector: ignored('method', 'boolean', TEXT_ONLY, true),
  freeze_language_model: unsupported('method', 'boolean', TEXT_ONLY, false),
  train_mm_proj_only: unsupported('method', 'boolean', TEXT_ONLY, false),
  use_llama_pro: unsupported('method', 'boolean', 'LLaMA Pro block expansion is not implemented', false),
  use_adam_mini: unsupported('method', 'boolean', 'only AdamW is implemented', false),
  use_muon: unsupported('method', 'boolean', 'only AdamW is implemented', false),
  use_galore: unsupported('method', 'boolean', 'GaLore is not implemented', false),
  use_apollo: unsupported('method', 'boolean', 'APOLLO is not implemented', false),
  use_badam: unsupported('method', 'boolean', 'BAdam is not implemented', false),
  pref_beta: supported('method', 'number', 0.1),
  pref_ftx: supported('method', 'number', 0),
  pref_loss: supported('method', 'string', 'sigmoid', {
    choices: ['sigmoid', 'hinge', 'ipo', 'orpo', 'simpo', 'kto_pair', 'bco'],
    unsupportedChoices: ['kto_pair', 'bco'],
  }),
  dpo_label_smoothing: supported('method', 'number', 0),
  simpo_gamma: supported('method', 'number', 0.5),
  kto_chosen_weight: unsupported('method', 'number', 'KTO is not implemented', 1),
  kto_rejected_weight: unsupported('method', 'number', 'KTO is not implemented', 1),
  ref_model: unsupported(
    'method',
    'string',
    'the reference is the model itself (adapters off, or its starting weights)',
    null,
  ),
  ref_model_adapters: unsupported('method', 'string', 'the reference is the model itself', null),
  ref_model_quantization_bit: unsupported('method', 'integer', 'quantization is not implemented', null),
  reward_model: unsupported('method', 'string', 'PPO is not implemented', null),
  reward_model_type: ignored('method', 'string', 'PPO is not implemented', 'lora'),
  ppo_buffer_size: ignored('method', 'integer', 'PPO is not implemented', 1),
  ppo_epochs: ignored('method', 'integer', 'PPO is not implemented', 4),
  ppo_score_norm: ignored('method', 'boolean', 'PPO is not implemented', false),
  ppo_target: ignored('method', 'number', 'PPO is not implemented', 6),
  ppo_whiten_rewards: ignored('method', 'boolean', 'PPO is not implemented', false),
  compute_accuracy: unsupported(
    'method',
    'boolean',
    'token accuracy during evaluation is not implemented',
    false,
  ),
  disable_shuffling: supported('method', 'boolean', false),
  plot_loss: ignored('method', 'boolean', 'training_loss.svg is always written', false),
  include_effective_tokens_per_second: ignored('method', 'boolean', 'tokens/s is always reported', false),
  early_stopping_steps: unsupported('method', 'integer', 'early stopping is not implemented', null),
  use_swanlab: ignored('method', 'boolean', NO_REPORTERS, false),
  swanlab_project: ignored('method', 'string', NO_REPORTERS, null),
  swanlab_run_name: ignored('method', 'string', NO_REPORTERS, null),
  swanlab_mode: ignored('method', 'string', NO_REPORTERS, null),
  swanlab_api_key: ignored('method', 'string', NO_REPORTERS, null),
  swanlab_workspace: ignored('method', 'string', NO_REPORTERS, null),

  // ---- dataset
  dataset: supported('dataset', 'list', undefined, {
    note: 'names in dataset_dir/dataset_info.json or file paths, comma-separated (required)',
  }),
  eval_dataset: supported('dataset', 'list', null),
  dataset_dir: supported('dataset', 'string', 'data'),
  media_dir: ignored('dataset', 'string', TEXT_ONLY, null),
  template: supported('dataset', 'string', null, {
    note: "a built-in template name; absent: the tokenizer's own chat_template",
  }),
  cutoff_len: supported('dataset', 'integer', 2048),
  train_on_prompt: supported('dataset', 'boolean', false),
  mask_history: supported('dataset', 'boolean', false),
  streaming: unsupported(
    'dataset',
    'boolean',
    'datasets are read before training (JSONL in bounded memory)',
    false,
  ),
  buffer_size: ignored('dataset', 'integer', 'only used with streaming', 16384),
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
    note: 'pt: concatenate documents into cutoff_len blocks (default on); sft packing is not supported',
  }),
  neat_packing: unsupported(
    'dataset',
    'boolean',
    'packing without cross-contamination is not implemented',
    false,
  ),
  tool_format: unsupported('dataset', 'string', 'tool formats come from the chat template', null),
  default_system: unsupported('dataset', 'string', 'put the system prompt in the data', null),
  enable_thinking: supported('dataset', 'boolean', true),
  tokenized_path: unsupported('dataset', 'string', 'there is no tokenized cache', null),
  data_shared_file_system: ignored('dataset', 'boolean', SINGLE_DEVICE, false),

  // ---- output
  output_dir: supported('output', 'string', undefined, {
    note: 'where the adapter or model, trainer_log.jsonl, checkpoints and plots go (required)',
  }),
  overwrite_output_dir: supported('output', 'boolean', false),
  logging_steps: supported('output', 'integer', 5),
  logging_strategy: ignored('output', 'string', 'logging follows logging_steps', 'steps'),
  logging_dir: ignored('output', 'string', NO_REPORTERS, null),
  logging_first_step: ignored('output', 'boolean', 'every step is shown on the dashboard', false),
  save_strategy: supported('output', 'string', 'steps', {
    choices: ['no', 'steps', 'epoch', 'best'],
    unsupportedChoices: ['best'],
  }),
  save_steps: supported('output', 'integer', 500),
  save_total_limit: supported('output', 'integer', null),
  save_only_model: ignored('output', 'boolean', 'checkpoints always hold what an exact resume needs', false),
  save_safetensors: ignored('output', 'boolean', 'everything is written as safetensors', true),
  report_to: ignored('output', 'string', NO_REPORTERS, 'none'),
  run_name: ignored('output', 'string', NO_REPORTERS, null),
  push_to_hub: unsupported('output', 'boolean', HUB, false),
  hub_model_id: unsupported('output', 'string', HUB, null),
  resume_from_checkpoint: supported('output', 'string-or-boolean', null, {
    note: 'true for the newest checkpoint in output_dir, or a checkpoint folder name',
  }),

  // ---- train
  per_device_train_batch_size: supported('train', 'integer', 8),
  gradient_accumulation_steps: supported('train', 'integer', 1),
  learning_rate: supported('train', 'number', 5e-5),
  num_train_epochs: supported('train', 'number', 3),
  max_steps: supported('train', 'integer', -1),
  lr_scheduler_type: supported('train', 'string', 'linear'),
  lr_scheduler_kwargs: unsupported('train', 'string', 'scheduler arguments are not supported', null),
  warmup_ratio: supported('train', 'number', 0),
  warmup_steps: supported('train', 'integer', 0),
  weight_decay: supported('train', 'number', 0),
  adam_beta1: supported('train', 'number', 0.9),
  adam_beta2: supported('train', 'number', 0.999),
  adam_epsilon: supported('train', 'number', 1e-8),
  max_grad_norm: supported('train', 'number', 1),
  optim: supported('train', 'string', 'adamw_torch', {
    choices: [
      'adamw_torch',
      'adamw_torch_fused',
      'adamw_hf',
      'adamw_8bit',
      'adafactor',
      'sgd',
      'paged_adamw_8bit',
    ],
    unsupportedChoices: ['adamw_8bit', 'adafactor', 'sgd', 'paged_adamw_8bit'],
  }),
  seed: supported('train', 'integer', 42),
  data_seed: ignored('train', 'integer', 'seed decides the data order', null),
  gradient_checkpointing: supported('train', 'boolean', null, {
    note: "Transformers' switch; disable_gradient_checkpointing is LLaMA-Factory's",
  }),
  bf16: supported('train', 'boolean', false, { note: 'a frozen bf16 base (LoRA); activations stay f32' }),
  fp16: supported('train', 'boolean', false, { note: 'a frozen f16 base (LoRA); activations stay f32' }),
  pure_bf16: supported('train', 'boolean', false, { note: 'as bf16: a frozen bf16 base' }),
  tf32: ignored('train', 'boolean', PRECISION, null),
  ddp_timeout: ignored('train', 'integer', SINGLE_DEVICE, 1800),
  ddp_find_unused_parameters: ignored('train', 'boolean', SINGLE_DEVICE, null),
  deepspeed: ignored('train', 'string', SINGLE_DEVICE, null),
  fsdp: ignored('train', 'string', SINGLE_DEVICE, ''),
  dataloader_num_workers: ignored('train', 'integer', 'batches are collated on the main thread', 0),
  dataloader_pin_memory: ignored('train', 'boolean', PERFORMANCE, true),
  remove_unused_columns: ignored('train', 'boolean', 'rows hold only what training reads', true),
  group_by_length: ignored('train', 'boolean', 'rows are shuffled, not grouped', false),
  torch_compile: ignored('train', 'boolean', PERFORMANCE, false),
  label_smoothing_factor: unsupported('train', 'number', 'label smoothing is not implemented for SFT', 0),

  // ---- eval
  do_eval: ignored('eval', 'boolean', 'evaluation follows eval_strategy and the validation rows', false),
  eval_strategy: supported('eval', 'string', 'no', { choices: ['no', 'steps', 'epoch'] }),
  evaluation_strategy: supported('eval', 'string', null, {
    choices: ['no', 'steps', 'epoch'],
    note: 'the older name of eval_strategy',
  }),
  eval_steps: supported('eval', 'integer', null, { note: 'default logging_steps' }),
  per_device_eval_batch_size: supported('eval', 'integer', 8),
  load_best_model_at_end: unsupported('eval', 'boolean', 'the last model is kept, not the best', false),
  metric_for_best_model: ignored('eval', 'string', 'only used with load_best_model_at_end', null),
  greater_is_better: ignored('eval', 'boolean', 'only used with load_best_model_at_end', null),

  // ---- predict: greedy answers to eval_dataset before and after training
  do_predict: supported('predict', 'boolean', false, {
    note: "answer eval_dataset's prompts before and after training; report exact matches",
  }),
  predict_with_generate: ignored('predict', 'boolean', 'prediction always generates', false),
  max_new_tokens: supported('predict', 'integer', 1024),
  do_sample: supported('predict', 'boolean', false, { note: 'prediction is greedy unless do_sample' }),
  temperature: supported('predict', 'number', 0.95),
  top_p: supported('predict', 'number', 0.7),
  top_k: supported('predict', 'integer', 50),
  repetition_penalty: supported('predict', 'number', 1),
  num_beams: unsupported('predict', 'integer', 'beam search is not implemented', 1),
  length_penalty: ignored('predict', 'number', 'only used with beam search', 1),
  skip_special_tokens: ignored('predict', 'boolean', 'special tokens are left out of answers', true),
};

/** Keys LLaMA-Factory reads that a run cannot go without. */
export const REQUIRED_KEYS = ['model_name_or_path', 'dataset', 'output_dir'] as const;

/** Levenshtein distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0];
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = previous[j];
      previous[j] = Math.min(
        previous[j] + 1,
        previous[j - 1] + 1,
        diagonal + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diagonal = saved;
    }
  }
  return previous[b.length];
}

/**
 * The known key nearest to `key`, or null when none is close: a key holding every word of `key`
 * (`num_epochs` -> `num_train_epochs`), else the smallest edit distance; keys webtune uses win
 * ties over keys it only accepts.
 */
export function nearestKey(key: string): string | null {
  const normalized = key.toLowerCase().replace(/-/g, '_');
  if (CONFIG_KEYS[normalized]) return normalized;
  const words = normalized.split('_').filter(Boolean);
  const penalty = (known: string) => (CONFIG_KEYS[known].status === 'supported' ? 0 : 0.5);
  let best: string | null = null;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const known of Object.keys(CONFIG_KEYS)) {
    const knownWords = known.split('_');
    const containsAll = words.length > 1 && words.every((word) => knownWords.includes(word));
    const score =
      (containsAll ? 0 : editDistance(normalized, known)) +
      penalty(known) +
      (containsAll ? knownWords.length / 10 : 0);
    if (containsAll || editDistance(normalized, known) <= Math.max(2, Math.floor(normalized.length / 3))) {
      if (score < bestScore) {
        best = known;
        bestScore = score;
      }
    }
  }
  return best;
}
