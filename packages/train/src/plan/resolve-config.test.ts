import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from './config-keys.js';
import { editDistance, nearestKey } from './nearest-key.js';
import { ConfigError, type RawConfig, resolveConfig } from './resolve-config.js';

const BASE = { model_name_or_path: 'models/x', dataset: 'identity', output_dir: 'saves/x' };

function issuesOf(raw: RawConfig): string[] {
  try {
    resolveConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((issue) => issue.message);
  }
  throw new Error('expected a ConfigError');
}
const errorOf = (raw: RawConfig) => {
  const issues = issuesOf(raw);
  expect(issues).toHaveLength(1);
  return issues[0];
};

// The fields of LLaMA-Factory's ModelArguments, DataArguments, FinetuningArguments and
// GeneratingArguments (src/llamafactory/hparams/*.py, read in August 2026), and the
// TrainingArguments keys its examples and web UI (webui/runner.py) write.
const LLAMA_FACTORY_FIELDS = `
model_name_or_path adapter_name_or_path adapter_folder cache_dir use_fast_tokenizer resize_vocab
split_special_tokens add_tokens add_special_tokens new_special_tokens_config init_special_tokens
model_revision low_cpu_mem_usage rope_scaling flash_attn shift_attn mixture_of_depths use_unsloth
use_unsloth_gc enable_liger_kernel moe_aux_loss_coef disable_gradient_checkpointing use_reentrant_gc
upcast_layernorm upcast_lmhead_output train_from_scratch infer_backend offload_folder use_kv_cache
use_v1_kernels infer_dtype hf_hub_token ms_hub_token om_hub_token print_param_status trust_remote_code
quantization_method quantization_bit quantization_type double_quantization quantization_device_map
image_max_pixels image_min_pixels image_do_pan_and_scan crop_to_patches video_max_pixels
video_min_pixels video_fps video_maxlen use_audio_in_video audio_sampling_rate export_dir export_size
export_device export_quantization_bit export_quantization_dataset export_quantization_nsamples
export_quantization_maxlen export_legacy_format export_hub_model_id vllm_maxlen vllm_gpu_util
vllm_enforce_eager vllm_max_lora_rank vllm_config sglang_maxlen sglang_mem_fraction sglang_tp_size
sglang_config sglang_lora_backend use_kt kt_cpu_activation kt_weight_path kt_non_expert_weight_path
kt_expert_checkpoint_path kt_use_lora_experts kt_lora_expert_num kt_lora_expert_intermediate_size
compute_dtype device_map model_max_length block_diag_attn
template dataset eval_dataset dataset_dir media_dir cutoff_len train_on_prompt mask_history streaming
buffer_size mix_strategy interleave_probs overwrite_cache preprocessing_batch_size
preprocessing_num_workers max_samples eval_num_beams ignore_pad_token_for_loss val_size
eval_on_each_dataset packing neat_packing tool_format default_system enable_thinking
preserve_thinking tokenized_path data_shared_file_system
freeze_trainable_layers freeze_trainable_modules freeze_extra_modules additional_target lora_alpha
lora_dropout lora_rank lora_target loraplus_lr_ratio loraplus_lr_embedding use_rslora use_dora
pissa_init pissa_iter pissa_convert create_new_adapter module_dropout oft_rank oft_block_size
oft_target pref_beta pref_ftx pref_bco_weight pref_loss dpo_label_smoothing kto_chosen_weight
kto_rejected_weight simpo_gamma ppo_buffer_size ppo_epochs ppo_score_norm ppo_target
ppo_whiten_rewards ref_model ref_model_adapters ref_model_quantization_bit reward_model
reward_model_adapters reward_model_quantization_bit reward_model_type ld_alpha use_galore
galore_target galore_rank galore_update_interval galore_scale galore_proj_type galore_layerwise
use_apollo apollo_target apollo_rank apollo_update_interval apollo_scale apollo_proj
apollo_proj_type apollo_scale_type apollo_layerwise apollo_scale_front use_badam badam_mode
badam_start_block badam_switch_mode badam_switch_interval badam_update_ratio badam_mask_mode
badam_verbose use_swanlab swanlab_project swanlab_workspace swanlab_run_name swanlab_mode
swanlab_api_key swanlab_logdir swanlab_lark_webhook_url swanlab_lark_secret pure_bf16 stage
finetuning_type use_llama_pro use_adam_mini use_mca use_megatron_bridge megatron_bridge_args
use_hyper_parallel hyper_parallel_args hyper_parallel_cp_size use_muon use_dft_loss use_asft_loss
asft_alpha use_eaft_loss eaft_alpha freeze_vision_tower freeze_multi_modal_projector
freeze_language_model compute_accuracy disable_shuffling early_stopping_steps plot_loss
include_effective_tokens_per_second
do_sample temperature top_p top_k num_beams max_length max_new_tokens repetition_penalty
length_penalty skip_special_tokens
ray_num_workers ray_init_kwargs master_addr master_port enable_torch_profiler profiler_output_dir
profiler_wait_steps profiler_warmup_steps profiler_active_steps profiler_repeat
profiler_record_shapes profiler_profile_memory profiler_with_stack profile_modules fp8 fp8_backend
fp8_enable_fsdp_float8_all_gather overwrite_output_dir
output_dir do_train do_eval do_predict per_device_train_batch_size per_device_eval_batch_size
gradient_accumulation_steps learning_rate num_train_epochs max_steps lr_scheduler_type
lr_scheduler_kwargs warmup_ratio warmup_steps weight_decay adam_beta1 adam_beta2 max_grad_norm
logging_steps save_steps save_strategy save_total_limit save_only_model eval_strategy eval_steps
bf16 fp16 tf32 optim seed report_to run_name ddp_timeout deepspeed fsdp dataloader_num_workers
resume_from_checkpoint gradient_checkpointing include_num_input_tokens_seen neftune_noise_alpha
predict_with_generate
`
  .split(/\s+/)
  .filter(Boolean);

describe('reading a LLaMA-Factory config', () => {
  it('knows every field LLaMA-Factory defines, each with a status and a reason when not used', () => {
    const unknown = LLAMA_FACTORY_FIELDS.filter((key) => !Object.hasOwn(CONFIG_KEYS, key));
    expect(unknown).toEqual([]);
    for (const [key, spec] of Object.entries(CONFIG_KEYS)) {
      if (spec.status !== 'supported') expect(spec.note, key).toBeTruthy();
    }
  });

  it('fills LLaMA-Factory defaults and keeps given values', () => {
    const { config, given } = resolveConfig({ ...BASE, lora_rank: 16, learning_rate: '1e-4' });
    expect(config.stage).toBe('sft');
    expect(config.finetuning_type).toBe('lora');
    expect(config.lora_alpha).toBe(32); // 2 x rank, as LLaMA-Factory
    expect(config.learning_rate).toBe(1e-4);
    expect(config.cutoff_len).toBe(2048);
    expect(config.per_device_train_batch_size).toBe(8); // Transformers' default
    expect(config.dataset).toEqual(['identity']);
    expect(config.lora_target).toEqual(['all']);
    expect(given.has('lora_rank')).toBe(true);
    expect(given.has('cutoff_len')).toBe(false);
  });

  it('names the nearest known key for an unknown one, and never "corrects" a known key', () => {
    expect(errorOf({ ...BASE, lerning_rate: 1e-4 })).toBe(
      'unknown config key "lerning_rate"; did you mean "learning_rate"?',
    );
    expect(errorOf({ ...BASE, num_epochs: 3 })).toMatch(/did you mean "num_train_epochs"/);
    expect(errorOf({ ...BASE, completely_made_up_thing: 1 })).not.toMatch(/did you mean/);
    expect(nearestKey('lora-rank')).toBe('lora_rank');
    expect(nearestKey('galore_rank')).toBe('galore_rank');
    for (const key of Object.keys(CONFIG_KEYS)) expect(nearestKey(key)).toBe(key);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    // LLaMA-Factory's web UI writes these; they are accepted, with a note when they ask for something.
    expect(() =>
      resolveConfig({ ...BASE, include_num_input_tokens_seen: true, galore_rank: 16, plot_loss: true }),
    ).not.toThrow();
  });

  it('reports every problem of a config at once', () => {
    expect(
      issuesOf({
        model_name_or_path: 'm',
        lerning_rate: 1e-4,
        lora_rank: 'eight',
        use_galore: true,
        pref_loss: 'bco',
        lora_dropout: 1.5,
      }),
    ).toEqual([
      'unknown config key "lerning_rate"; did you mean "learning_rate"?',
      'lora_rank must be an integer, got "eight"',
      expect.stringMatching(/^use_galore: true is a LLaMA-Factory setting webtune does not support/),
      expect.stringMatching(/^pref_loss: "bco" is known to LLaMA-Factory but not supported by webtune/),
      expect.stringMatching(/^the config needs dataset/),
      expect.stringMatching(/^the config needs output_dir/),
      'lora_dropout must be in [0, 1), got 1.5',
    ]);
    const error = (() => {
      try {
        resolveConfig({ ...BASE, lora_rank: 0, do_predict: true });
      } catch (caught) {
        return caught as ConfigError;
      }
    })();
    expect(error?.message.split('\n')).toEqual([
      'lora_rank must be at least 1, got 0',
      'do_predict needs eval_dataset (the prompts to answer)',
    ]);
  });

  it('says so for known but unsupported features, and accepts their neutral values', () => {
    expect(errorOf({ ...BASE, finetuning_type: 'oft' })).toMatch(/not supported/);
    expect(errorOf({ ...BASE, lr_scheduler_type: 'reduce_lr_on_plateau' })).toMatch(
      /reduce_lr_on_plateau" is known to LLaMA-Factory but not supported/,
    );
    expect(() => resolveConfig({ ...BASE, quantization_bit: null, use_galore: false })).not.toThrow();
    expect(errorOf({ ...BASE, finetuning_type: 'full', quantization_bit: 4 })).toMatch(
      /quantization_bit: 4 with finetuning_type: full: a quantized base is frozen/,
    );
  });

  it("applies LLaMA-Factory's streaming rules, all problems at once", () => {
    const streaming = { ...BASE, streaming: true };
    expect(resolveConfig({ ...streaming, max_steps: 10, buffer_size: 64, val_size: 5 }).config).toMatchObject(
      {
        streaming: true,
        buffer_size: 64,
      },
    );
    expect(issuesOf({ ...streaming, val_size: 0.1, max_samples: 100, buffer_size: 0 })).toEqual([
      expect.stringMatching(/please specify max_steps in streaming mode/),
      expect.stringMatching(/streaming mode should have an integer val_size.*0\.1/),
      'max_samples is incompatible with streaming',
      'buffer_size must be at least 1, got 0',
    ]);
    expect(errorOf({ ...streaming, max_steps: 5, packing: true, stage: 'sft' })).toMatch(/greedy knapsack/);
    expect(errorOf({ ...streaming, max_steps: 5, stage: 'dpo', finetuning_type: 'full' })).toMatch(
      /reference log-probabilities of every row/,
    );
    expect(() =>
      resolveConfig({ ...streaming, max_steps: 5, stage: 'dpo', finetuning_type: 'lora' }),
    ).not.toThrow();
  });

  it('accepts keys without effect here with a note', () => {
    const { notes } = resolveConfig({
      ...BASE,
      tf32: true,
      report_to: 'none',
      ddp_timeout: 180000000,
      trust_remote_code: true,
      include_num_input_tokens_seen: true,
    });
    expect(notes).toEqual([
      expect.stringMatching(/^tf32: true has no effect \(webtune trains in float32/),
      expect.stringMatching(/^ddp_timeout: 180000000 has no effect/),
      expect.stringMatching(/^trust_remote_code: true has no effect/),
      expect.stringMatching(/^include_num_input_tokens_seen: true has no effect/),
    ]);
  });

  it('checks types, choices and ranges', () => {
    expect(errorOf({ ...BASE, stage: 'rlhf' })).toMatch(
      /stage must be one of pt, sft, rm, dpo, kto, ppo, got "rlhf"/,
    );
    expect(errorOf({ ...BASE, do_train: 'yes' })).toMatch(/do_train must be true or false/);
    expect(errorOf({ ...BASE, lr_scheduler_kwargs: '[1]' })).toMatch(/lr_scheduler_kwargs must be a mapping/);
    expect(errorOf({ ...BASE, lr_scheduler_kwargs: { num_cycles: 2 } })).toBe(
      'lr_scheduler_kwargs.num_cycles is not an argument of linear (it takes none)',
    );
    const kwargs = { ...BASE, lr_scheduler_type: 'cosine', lr_scheduler_kwargs: '{"num_cycles": 2}' };
    expect(resolveConfig(kwargs).config.lr_scheduler_kwargs).toEqual({ num_cycles: 2 });
    expect(resolveConfig({ ...BASE, interleave_probs: '0.3, 0.7' }).config.interleave_probs).toEqual([
      0.3, 0.7,
    ]);
  });
});
