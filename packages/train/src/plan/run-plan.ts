/**
 * The run plan: one LLaMA-Factory config turned into everything a front end hands to the
 * packages (the training arguments, the method, the stage's task, the data and generation
 * options) with one set of defaults. The CLI, `webtune webui` and the web app's worker all call
 * `planRun`; none of them decides anything about a run.
 */
import type { Stage } from '@webtune/data';
import type { BaseFormat } from '@webtune/nn';
import {
  type BottleneckConfig,
  bottleneckConfig,
  type FreezeOptions,
  type LoraConfig,
  type LoraInit,
  loraConfig,
} from '@webtune/peft';
import type { TrainingArguments } from '../config/training-arguments.js';
import type { ScheduleType } from '../schedule/learning-rate.js';
import type { LogitsChunking } from '../tasks/logits-chunks.js';
import { baseFormatOf } from './base-format.js';
import type { LlamaFactoryConfig } from './config-keys.js';
import { ConfigError, type RawConfig, type ResolvedConfig, resolveConfig } from './resolve-config.js';

/** Which weights train, and how. */
export type MethodPlan =
  /**
   * LoRA (DoRA, rsLoRA, PiSSA by its config). `pissaConvert` (set only with PiSSA): the adapter
   * is saved converted to a plain LoRA of rank 2r for the untouched base (pissa_convert).
   */
  | { type: 'lora'; config: LoraConfig; pissaConvert?: boolean }
  /** A LoRA adapter to continue (adapter_name_or_path): its own config is in its folder. */
  | { type: 'continue-adapter'; path: string }
  /** A bottleneck adapter (webtune's `finetuning_type: adapter`). */
  | { type: 'adapter'; config: BottleneckConfig }
  | { type: 'freeze'; options: FreezeOptions }
  | { type: 'full' };

/** The stage's training task (see createTask). */
export type TaskPlan =
  /** `dft` (set only when on): use_dft_loss. */
  | { type: 'supervised'; stage: 'sft' | 'pt'; dft?: true }
  | {
      type: 'preference';
      loss: 'sigmoid' | 'hinge' | 'ipo' | 'orpo' | 'simpo';
      beta: number;
      labelSmoothing: number;
      simpoGamma: number;
      ftx: number;
    }
  | {
      type: 'kto';
      beta: number;
      desirableWeight: number;
      undesirableWeight: number;
      ftx: number;
    }
  | { type: 'reward' }
  /** PPO (LLaMA-Factory's stage ppo): trainPpo, not the row trainer. */
  | {
      type: 'ppo';
      rewardModel: string;
      rewardModelType: 'lora' | 'full' | 'api';
      epochs: number;
      bufferSize: number;
      target: number;
      scoreNorm: boolean;
      whitenRewards: boolean;
    };

/** How the datasets are read and encoded (the options of @webtune/data's prepareDataset). */
export interface DataPlan {
  stage: Stage;
  /** Dataset names (dataset_info.json) or paths. */
  datasets: string[];
  /** eval_dataset: validation rows from these instead of a split (empty: none). */
  evalDatasets: string[];
  /** Whether eval_dataset is read as validation rows (evaluation is on). */
  readEvalDatasets: boolean;
  datasetDir: string;
  /** A template name, or null for the tokenizer's own chat_template (null for pt). */
  template: string | null;
  /** Whether a chat template is used at all (not for pt). */
  usesTemplate: boolean;
  cutoffLen: number;
  maxSamples: number | undefined;
  seed: number;
  trainOnPrompt: boolean;
  maskHistory: boolean;
  enableThinking: boolean;
  /** default_system: the system prompt of rows that give none. */
  defaultSystem: string | undefined;
  /** tool_format: LLaMA-Factory's tool-call format instead of the template's. */
  toolFormat: string | undefined;
  /**
   * pt: concatenate documents into cutoff_len blocks (default on). sft: pack examples into
   * cutoff_len - 1 tokens (packing or neat_packing). Undefined for other stages.
   */
  packing: boolean | undefined;
  /** sft: packed examples never attend to each other (neat_packing). */
  neatPacking: boolean;
  /** Validation share (below 1) or count; undefined when eval_dataset gives the rows. */
  valSize: number | undefined;
  mixStrategy: 'concat' | 'interleave_under' | 'interleave_over';
  interleaveProbs: number[] | undefined;
  /** streaming: read lazily through a shuffle buffer of `bufferSize` rows, tokenized on the fly. */
  streaming: boolean;
  bufferSize: number;
}

/** Options of generation (do_predict, chat). */
export interface GenerationPlan {
  maxNewTokens: number;
  /** 0 when greedy (do_sample false). */
  temperature: number;
  topP: number | undefined;
  topK: number | undefined;
  repetitionPenalty: number;
  seed: number;
}

export interface RunPlan {
  /** The checked config with every default filled in. */
  config: LlamaFactoryConfig;
  /** Keys the config set. */
  given: ReadonlySet<string>;
  /** Keys set without effect here, one line each. */
  notes: string[];
  /** do_train / do_eval / do_predict. */
  actions: { train: boolean; evaluate: boolean; predict: boolean };
  stage: 'pt' | 'sft' | 'rm' | 'dpo' | 'kto' | 'ppo';
  method: MethodPlan;
  task: TaskPlan;
  /**
   * Rows of vocabulary logits the stage's loss computes at once (logits_chunk_rows): 'auto'
   * (the default) follows logitsChunkRows' rule per micro-batch, 0 computes them all at once.
   * The reward model has no vocabulary head and ignores it.
   */
  logitsChunkRows: LogitsChunking;
  data: DataPlan;
  trainingArguments: TrainingArguments;
  generation: GenerationPlan;
  /** How the frozen base is stored (quantization_bit, bf16, fp16); f32 otherwise. */
  baseFormat: BaseFormat;
  /** The base model the run's adapter names (base_model_name_or_path). */
  baseModel: string;
  /** Where a train_from_scratch run keeps its drawn base weights beside the adapter (else null). */
  baseModelDirectory: string | null;
}

/** Plans a run from a config as parsed (after overrides); throws ConfigError listing every problem. */
export function planRun(raw: RawConfig): RunPlan {
  return planResolved(resolveConfig(raw));
}

/** Plans a run from a config that resolveConfig has checked. */
export function planResolved(resolved: ResolvedConfig): RunPlan {
  const { config } = resolved;
  const stage = config.stage as RunPlan['stage'];
  const outputDir = config.output_dir.replace(/\/+$/, '');
  // An adapter is useless without its base: a run from scratch keeps the drawn weights beside it.
  const addsAdapter = config.finetuning_type === 'lora' || config.finetuning_type === 'adapter';
  const baseModelDirectory = config.train_from_scratch && addsAdapter ? `${outputDir}/base_model` : null;
  const baseModel = baseModelDirectory ?? config.model_name_or_path;
  return {
    config,
    given: resolved.given,
    notes: resolved.notes,
    actions: { train: config.do_train, evaluate: config.do_eval, predict: config.do_predict },
    stage,
    method: checkedMethodOf(config, baseModel),
    task: taskOf(config, stage),
    logitsChunkRows: config.logits_chunk_rows ?? 'auto',
    data: dataOf(config, stage),
    trainingArguments: trainingArgumentsOf(config, baseModel),
    generation: generationOf(config),
    baseFormat: baseFormatOf(config).format,
    baseModel,
    baseModelDirectory,
  };
}

/** GeneratingArguments as generation options: greedy unless do_sample. */
export function generationOf(config: LlamaFactoryConfig): GenerationPlan {
  return {
    maxNewTokens: config.max_new_tokens,
    temperature: config.do_sample ? config.temperature : 0,
    topP: config.do_sample ? config.top_p : undefined,
    topK: config.do_sample ? config.top_k : undefined,
    repetitionPenalty: config.repetition_penalty,
    seed: config.seed,
  };
}

/** methodOf, with @webtune/peft's refusals of a method config as ConfigError. */
function checkedMethodOf(config: LlamaFactoryConfig, baseModel: string): MethodPlan {
  try {
    return methodOf(config, baseModel);
  } catch (error) {
    throw new ConfigError([{ key: 'finetuning_type', message: (error as Error).message }]);
  }
}

function methodOf(config: LlamaFactoryConfig, baseModel: string): MethodPlan {
  switch (config.finetuning_type) {
    case 'lora': {
      if (config.adapter_name_or_path) {
        return { type: 'continue-adapter', path: config.adapter_name_or_path };
      }
      const init: LoraInit = config.pissa_init
        ? config.pissa_iter < 0
          ? 'pissa'
          : `pissa_niter_${config.pissa_iter}`
        : true;
      const target = config.lora_target;
      return {
        type: 'lora',
        ...(config.pissa_init ? { pissaConvert: config.pissa_convert } : {}),
        config: loraConfig({
          r: config.lora_rank,
          lora_alpha: config.lora_alpha ?? 2 * config.lora_rank,
          lora_dropout: config.lora_dropout,
          target_modules:
            target.length === 0 || (target.length === 1 && target[0] === 'all') ? 'all-linear' : target,
          modules_to_save:
            config.additional_target && config.additional_target.length > 0 ? config.additional_target : null,
          use_rslora: config.use_rslora,
          use_dora: config.use_dora,
          init_lora_weights: init,
          base_model_name_or_path: baseModel,
        }),
      };
    }
    case 'adapter':
      return { type: 'adapter', config: bottleneckConfig({ bottleneck_size: config.adapter_size }) };
    case 'freeze': {
      const modules = config.freeze_trainable_modules;
      return {
        type: 'freeze',
        options: {
          trainableLayers: config.freeze_trainable_layers,
          trainableModules: modules.length === 1 && modules[0] === 'all' ? 'all' : modules,
          extraModules: config.freeze_extra_modules ?? [],
        },
      };
    }
    default:
      return { type: 'full' };
  }
}

function taskOf(config: LlamaFactoryConfig, stage: RunPlan['stage']): TaskPlan {
  if (stage === 'sft' || stage === 'pt') {
    return config.use_dft_loss ? { type: 'supervised', stage, dft: true } : { type: 'supervised', stage };
  }
  if (stage === 'rm') return { type: 'reward' };
  if (stage === 'ppo') {
    return {
      type: 'ppo',
      rewardModel: config.reward_model ?? '',
      rewardModelType: config.reward_model_type as 'lora' | 'full' | 'api',
      epochs: config.ppo_epochs,
      bufferSize: config.ppo_buffer_size,
      target: config.ppo_target,
      scoreNorm: config.ppo_score_norm,
      whitenRewards: config.ppo_whiten_rewards,
    };
  }
  if (stage === 'kto') {
    return {
      type: 'kto',
      beta: config.pref_beta,
      desirableWeight: config.kto_chosen_weight,
      undesirableWeight: config.kto_rejected_weight,
      ftx: config.pref_ftx,
    };
  }
  return {
    type: 'preference',
    loss: config.pref_loss as 'sigmoid',
    beta: config.pref_beta,
    labelSmoothing: config.dpo_label_smoothing,
    simpoGamma: config.simpo_gamma,
    ftx: config.pref_ftx,
  };
}

/** The prompt encoder's options of a plan (@webtune/data's PromptEncoder), the same in every front end. */
export function promptOptionsOf(data: DataPlan) {
  return {
    template: data.template ?? undefined,
    enableThinking: data.enableThinking,
    defaultSystem: data.defaultSystem,
    toolFormat: data.toolFormat,
  };
}

/** How rows are tokenized (prepareDataset's encoding options), the same in every front end. */
export function encodingOptionsOf(data: DataPlan) {
  return {
    stage: data.stage,
    cutoffLen: data.cutoffLen,
    maxSamples: data.maxSamples,
    seed: data.seed,
    trainOnPrompt: data.trainOnPrompt,
    maskHistory: data.maskHistory,
    enableThinking: data.enableThinking,
    defaultSystem: data.defaultSystem,
    toolFormat: data.toolFormat,
    packing: data.packing,
    neatPacking: data.neatPacking,
  };
}

function dataOf(config: LlamaFactoryConfig, stage: RunPlan['stage']): DataPlan {
  const evalDatasets = config.eval_dataset ?? [];
  return {
    // PPO reads SFT rows and answers their prompts itself.
    stage: stage === 'ppo' ? 'sft' : stage,
    datasets: config.dataset,
    evalDatasets,
    readEvalDatasets:
      evalDatasets.length > 0 && (config.eval_strategy !== 'no' || config.do_eval || config.do_predict),
    datasetDir: config.dataset_dir,
    template: stage === 'pt' ? null : config.template,
    usesTemplate: stage !== 'pt',
    cutoffLen: config.cutoff_len,
    maxSamples: config.max_samples ?? undefined,
    seed: config.seed,
    trainOnPrompt: config.train_on_prompt,
    maskHistory: config.mask_history,
    enableThinking: config.enable_thinking,
    defaultSystem: config.default_system ?? undefined,
    toolFormat: config.tool_format ?? undefined,
    packing:
      stage === 'pt'
        ? (config.packing ?? true)
        : stage === 'sft'
          ? config.packing === true || config.neat_packing === true
          : undefined,
    neatPacking: stage === 'sft' && config.neat_packing === true,
    valSize: evalDatasets.length > 0 || !(config.val_size > 0) ? undefined : config.val_size,
    mixStrategy: config.mix_strategy as DataPlan['mixStrategy'],
    interleaveProbs: config.interleave_probs ?? undefined,
    streaming: config.streaming,
    bufferSize: config.buffer_size,
  };
}

/**
 * Transformers' TrainingArguments from the config. Gradient checkpointing: an explicit
 * `gradient_checkpointing` wins, else it is on unless `disable_gradient_checkpointing` (as
 * LLaMA-Factory does).
 */
function trainingArgumentsOf(config: LlamaFactoryConfig, baseModel: string): TrainingArguments {
  const evalStrategy = config.eval_strategy as 'no' | 'steps' | 'epoch';
  const saveStrategy = config.save_strategy as 'no' | 'steps' | 'epoch';
  return {
    numTrainEpochs: config.num_train_epochs,
    maxSteps: config.max_steps,
    perDeviceTrainBatchSize: config.per_device_train_batch_size,
    perDeviceEvalBatchSize: config.per_device_eval_batch_size,
    gradientAccumulationSteps: config.gradient_accumulation_steps,
    learningRate: config.learning_rate,
    weightDecay: config.weight_decay,
    adamBeta1: config.adam_beta1,
    adamBeta2: config.adam_beta2,
    adamEpsilon: config.adam_epsilon,
    lrSchedulerType: config.lr_scheduler_type as ScheduleType,
    lrSchedulerKwargs: config.lr_scheduler_kwargs,
    warmupRatio: config.warmup_ratio,
    warmupSteps: config.warmup_steps,
    maxGradNorm: config.max_grad_norm,
    // Only when set, so plans without LoRA+ read as before.
    ...(config.loraplus_lr_ratio != null
      ? { loraplusLrRatio: config.loraplus_lr_ratio, loraplusLrEmbedding: config.loraplus_lr_embedding }
      : {}),
    gradientCheckpointing: config.gradient_checkpointing ?? !config.disable_gradient_checkpointing,
    // LLaMA-Factory's half-precision switches also halve the layer inputs checkpointing keeps
    // (only when set, so plans without them read as before),
    // and the activations a layer keeps for backward without checkpointing.
    ...(config.bf16 || config.fp16 || config.pure_bf16
      ? { checkpointDtype: 'f16' as const, activationDtype: 'f16' as const }
      : {}),
    seed: config.seed,
    shuffle: !config.disable_shuffling,
    loggingSteps: config.logging_steps,
    evalStrategy,
    evalSteps: evalStrategy === 'steps' ? (config.eval_steps ?? config.logging_steps) : null,
    saveStrategy,
    saveSteps: saveStrategy === 'steps' ? config.save_steps : null,
    saveTotalLimit: config.save_total_limit,
    resumeFromCheckpoint: config.resume_from_checkpoint || null,
    modelNameOrPath: baseModel,
  };
}
