import { CONFIG_KEYS } from '@webtune/train';
import type { BoardConfig, StageName, TrainSettings } from '../engine/protocol.js';
import { field, h, numberInput, select } from '../ui/dom.js';

/** Fine-tuning methods the board offers (LLaMA-Factory's `finetuning_type`, DoRA as its own entry). */
export type MethodName = 'lora' | 'dora' | 'adapter' | 'freeze' | 'full';

export const STAGE_LABELS: Record<StageName, string> = {
  sft: 'SFT (answers)',
  dpo: 'DPO (preferences)',
  kto: 'KTO (answers marked good or bad)',
  rm: 'Reward model (preferences)',
  ppo: 'PPO (prompts, a reward model)',
  pt: 'Pretraining (text)',
};

export const METHOD_LABELS: Record<MethodName, string> = {
  lora: 'LoRA',
  dora: 'DoRA',
  adapter: 'Adapter (bottleneck)',
  freeze: 'Freeze (last layers)',
  full: 'Full',
};

/** The config keys that choose a method of the board's list. */
export function methodConfig(method: MethodName): BoardConfig {
  return method === 'dora' ? { finetuning_type: 'lora', use_dora: true } : { finetuning_type: method };
}

/** A key's default, from the one table of LLaMA-Factory's keys (what `webtune train` uses too). */
function defaultOf(key: string): number {
  return Number(CONFIG_KEYS[key].default);
}

interface NumberSetting {
  key: string;
  /** LLaMA-Factory's key: the run's config holds it under this name. */
  yaml: string;
  label: string;
  help: string;
  value: number;
  min?: number;
  max?: number;
  step?: number | 'any';
  /** Shown only for these methods / stages. */
  methods?: MethodName[];
  stages?: StageName[];
  /** Left empty, the key is not sent (its default applies: lora_alpha is 2 x lora_rank). */
  optional?: boolean;
  /** A value that means "not set" (0 max steps or eval steps): the key is not sent. */
  unset?: number;
}

/** The hyperparameters, with the key table's defaults and a line of help each. */
export const NUMBER_SETTINGS: NumberSetting[] = [
  {
    key: 'learningRate',
    yaml: 'learning_rate',
    label: 'Learning rate',
    help: 'Peak step size of AdamW. LoRA often uses 1e-4 to 2e-4; full tuning 1e-5.',
    value: defaultOf('learning_rate'),
    min: 0,
  },
  {
    key: 'numTrainEpochs',
    yaml: 'num_train_epochs',
    label: 'Epochs',
    help: 'Passes over the training rows (fractions stop part-way).',
    value: defaultOf('num_train_epochs'),
    min: 0,
  },
  {
    key: 'maxSteps',
    yaml: 'max_steps',
    label: 'Max steps',
    help: 'Optimizer steps; above 0 it replaces the epochs.',
    value: 0,
    min: 0,
    step: 1,
    unset: 0,
  },
  {
    key: 'perDeviceTrainBatchSize',
    yaml: 'per_device_train_batch_size',
    label: 'Batch size',
    help: 'Rows per micro-batch on the GPU.',
    value: defaultOf('per_device_train_batch_size'),
    min: 1,
    step: 1,
  },
  {
    key: 'gradientAccumulationSteps',
    yaml: 'gradient_accumulation_steps',
    label: 'Gradient accumulation',
    help: 'Micro-batches added up per optimizer step: the effective batch is batch size x this.',
    value: defaultOf('gradient_accumulation_steps'),
    min: 1,
    step: 1,
  },
  {
    key: 'warmupSteps',
    yaml: 'warmup_steps',
    label: 'Warmup steps',
    help: 'Steps over which the learning rate rises from 0.',
    value: defaultOf('warmup_steps'),
    min: 0,
    step: 1,
  },
  {
    key: 'maxGradNorm',
    yaml: 'max_grad_norm',
    label: 'Max gradient norm',
    help: 'Clips the gradient to this global norm; 0 turns clipping off.',
    value: defaultOf('max_grad_norm'),
    min: 0,
  },
  {
    key: 'weightDecay',
    yaml: 'weight_decay',
    label: 'Weight decay',
    help: 'AdamW decay on weights (never on norms and biases).',
    value: defaultOf('weight_decay'),
    min: 0,
  },
  {
    key: 'loggingSteps',
    yaml: 'logging_steps',
    label: 'Logging steps',
    help: 'A trainer_log.jsonl row every N steps (the chart updates every step).',
    value: defaultOf('logging_steps'),
    min: 1,
    step: 1,
  },
  {
    key: 'saveSteps',
    yaml: 'save_steps',
    label: 'Save steps',
    help: 'A checkpoint in this browser’s private storage every N steps, to resume from.',
    value: defaultOf('save_steps'),
    min: 1,
    step: 1,
  },
  {
    key: 'evalSteps',
    yaml: 'eval_steps',
    label: 'Eval steps',
    help: 'Evaluate on the validation rows every N steps (needs a validation split in Data); 0: never.',
    value: 0,
    min: 0,
    step: 1,
    unset: 0,
  },
  {
    key: 'seed',
    yaml: 'seed',
    label: 'Seed',
    help: 'Fixes the data order, initialisation and dropout.',
    value: defaultOf('seed'),
    step: 1,
  },
  {
    key: 'loraRank',
    yaml: 'lora_rank',
    label: 'LoRA rank',
    help: 'Width of the low-rank update; higher learns more and costs more.',
    value: defaultOf('lora_rank'),
    min: 1,
    step: 1,
    methods: ['lora', 'dora'],
  },
  {
    key: 'loraAlpha',
    yaml: 'lora_alpha',
    label: 'LoRA alpha',
    help: 'Scale of the update (alpha / rank); empty: 2 x rank, as LLaMA-Factory.',
    value: Number.NaN,
    optional: true,
    min: 0,
    methods: ['lora', 'dora'],
  },
  {
    key: 'loraDropout',
    yaml: 'lora_dropout',
    label: 'LoRA dropout',
    help: 'Dropout on the adapter input while training.',
    value: defaultOf('lora_dropout'),
    min: 0,
    max: 0.99,
    methods: ['lora', 'dora'],
  },
  {
    key: 'adapterSize',
    yaml: 'adapter_size',
    label: 'Adapter width',
    help: 'Bottleneck width of each adapter block.',
    value: defaultOf('adapter_size'),
    min: 1,
    step: 1,
    methods: ['adapter'],
  },
  {
    key: 'freezeTrainableLayers',
    yaml: 'freeze_trainable_layers',
    label: 'Trainable layers',
    help: 'The last N layers train (a negative N: the first |N|).',
    value: defaultOf('freeze_trainable_layers'),
    step: 1,
    methods: ['freeze'],
  },
  {
    key: 'prefBeta',
    yaml: 'pref_beta',
    label: 'Beta (pref_beta)',
    help: 'How far the policy may move from the reference model (DPO, KTO).',
    value: defaultOf('pref_beta'),
    min: 0,
    stages: ['dpo', 'kto'],
  },
  {
    key: 'ktoChosenWeight',
    yaml: 'kto_chosen_weight',
    label: 'KTO desirable weight',
    help: 'Weight of the answers marked good (raise it when they are fewer than the bad ones).',
    value: defaultOf('kto_chosen_weight'),
    min: 0,
    stages: ['kto'],
  },
  {
    key: 'ktoRejectedWeight',
    yaml: 'kto_rejected_weight',
    label: 'KTO undesirable weight',
    help: 'Weight of the answers marked bad.',
    value: defaultOf('kto_rejected_weight'),
    min: 0,
    stages: ['kto'],
  },
  {
    key: 'ppoEpochs',
    yaml: 'ppo_epochs',
    label: 'PPO epochs',
    help: 'Passes over each batch of generated answers.',
    value: defaultOf('ppo_epochs'),
    min: 1,
    step: 1,
    stages: ['ppo'],
  },
  {
    key: 'ppoTarget',
    yaml: 'ppo_target',
    label: 'PPO KL target',
    help: 'The KL to the reference the adaptive penalty steers to.',
    value: defaultOf('ppo_target'),
    min: 0,
    stages: ['ppo'],
  },
  {
    key: 'maxNewTokens',
    yaml: 'max_new_tokens',
    label: 'Answer length (max_new_tokens)',
    help: 'Tokens the policy may generate per prompt in each PPO step; short answers keep steps fast in a tab.',
    value: 32,
    min: 1,
    step: 1,
    stages: ['ppo'],
  },
  {
    key: 'logitsChunkRows',
    yaml: 'logits_chunk_rows',
    label: 'Logits chunk rows',
    help: 'Rows of vocabulary logits computed at once; empty: chosen from the vocabulary, the tokens and the device; 0: all at once.',
    value: Number.NaN,
    optional: true,
    min: 0,
    step: 1,
    stages: ['pt', 'sft', 'dpo', 'kto', 'ppo'],
  },
];

/** The schedules the trainer implements (those needing lr_scheduler_kwargs are for config files). */
const SCHEDULES: [string, string][] = [
  ['linear', 'linear'],
  ['cosine', 'cosine'],
  ['cosine_with_restarts', 'cosine with restarts'],
  ['polynomial', 'polynomial'],
  ['inverse_sqrt', 'inverse square root'],
  ['constant', 'constant'],
  ['constant_with_warmup', 'constant with warmup'],
];

/** The Train tab's settings form; `read()` gives the run's settings. */
export class TrainSettingsForm {
  readonly element: HTMLElement;
  readonly stage: HTMLSelectElement;
  readonly method: HTMLSelectElement;
  readonly runName: HTMLInputElement;
  private readonly numbers = new Map<string, HTMLInputElement>();
  private readonly fields = new Map<string, HTMLElement>();
  private readonly schedule: HTMLSelectElement;
  private readonly target: HTMLInputElement;
  private readonly preferenceLoss: HTMLSelectElement;
  private readonly checkpointing: HTMLInputElement;
  private readonly rewardModel: HTMLInputElement;

  constructor() {
    this.stage = select('stage', Object.entries(STAGE_LABELS), 'sft');
    // One place chooses the stage: the Data tab (this select mirrors it).
    this.stage.disabled = true;
    this.method = select('method', Object.entries(METHOD_LABELS), 'lora');
    this.schedule = select('lr_scheduler_type', SCHEDULES, String(CONFIG_KEYS.lr_scheduler_type.default));
    this.target = h('input', { type: 'text', name: 'lora_target', value: 'all', spellcheck: false });
    this.preferenceLoss = select(
      'pref_loss',
      [
        ['sigmoid', 'sigmoid (DPO)'],
        ['hinge', 'hinge'],
        ['ipo', 'IPO'],
      ],
      'sigmoid',
    );
    this.runName = h('input', {
      type: 'text',
      name: 'run_name',
      value: 'run-1',
      pattern: '[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*',
      spellcheck: false,
    });
    this.rewardModel = h('input', {
      type: 'text',
      name: 'reward_model',
      placeholder: 'the name of a Reward model run',
      spellcheck: false,
    });
    this.checkpointing = h('input', {
      type: 'checkbox',
      name: 'gradient_checkpointing',
      checked: CONFIG_KEYS.disable_gradient_checkpointing.default !== true,
    });
    const numberFields = NUMBER_SETTINGS.map((setting) => {
      const input = numberInput(setting.yaml, setting.value, setting);
      this.numbers.set(setting.key, input);
      const element = field(setting.label, input, setting.help);
      this.fields.set(setting.key, element);
      return element;
    });
    const targetField = field(
      'LoRA target modules',
      this.target,
      '`all` for every linear layer, or names such as q_proj,v_proj.',
    );
    this.fields.set('loraTarget', targetField);
    const lossField = field('DPO loss', this.preferenceLoss, 'sigmoid is the original DPO loss.');
    this.fields.set('preferenceLoss', lossField);
    const rewardField = field(
      'Reward model (reward_model)',
      this.rewardModel,
      'A completed LoRA run of stage Reward model in this browser, by its run name.',
    );
    this.fields.set('rewardModel', rewardField);
    this.element = h(
      'div',
      { class: 'train-settings' },
      h(
        'div',
        { class: 'form-grid' },
        field(
          'Stage',
          this.stage,
          'Chosen in the Data tab, since it decides which rows are valid: answers (SFT), preferred vs rejected answers (DPO), or raw text.',
        ),
        field(
          'Method',
          this.method,
          'Which weights train. LoRA and DoRA train small added matrices; full tuning needs the most memory.',
        ),
        field(
          'Run name',
          this.runName,
          'Checkpoints are kept under this name in the browser. Start begins again (and removes them); Resume continues.',
        ),
        field('Learning-rate schedule', this.schedule, 'How the learning rate moves after warmup.'),
        targetField,
        lossField,
        rewardField,
        ...numberFields,
        h(
          'div',
          { class: 'field checkbox' },
          h('label', {}, this.checkpointing, ' Gradient checkpointing'),
          h(
            'small',
            { class: 'help' },
            'Recompute activations in backward: less memory, about a third more time.',
          ),
        ),
      ),
    );
    this.stage.addEventListener('change', () => this.showRelevant());
    this.method.addEventListener('change', () => this.showRelevant());
    this.showRelevant();
  }

  /** Mirrors the Data tab's stage, showing the fields that stage uses. */
  setStage(stage: StageName): void {
    if (this.stage.value === stage) return;
    this.stage.value = stage;
    this.showRelevant();
  }

  /** Sets a number field (tests and presets). */
  set(key: string, value: number): void {
    const input = this.numbers.get(key);
    if (input) input.value = String(value);
  }

  private number(key: string): number {
    const input = this.numbers.get(key)!;
    const value = Number(input.value);
    if (input.value.trim() === '' || !Number.isFinite(value)) {
      throw new Error(`${input.name} must be a number, got “${input.value}”`);
    }
    // The form's bounds hold for typed values too (the browser only marks them).
    const setting = NUMBER_SETTINGS.find((candidate) => candidate.key === key)!;
    if (setting.min !== undefined && value < setting.min) {
      throw new Error(`${input.name} must be at least ${setting.min}, got ${value}`);
    }
    if (setting.max !== undefined && value > setting.max) {
      throw new Error(`${input.name} must be at most ${setting.max}, got ${value}`);
    }
    if (setting.step === 1 && !Number.isInteger(value)) {
      throw new Error(`${input.name} must be a whole number, got ${value}`);
    }
    return value;
  }

  /** Every control's value by name: what a reload restores (localStorage). */
  snapshot(): Record<string, string | boolean> {
    const values: Record<string, string | boolean> = {};
    for (const control of this.element.querySelectorAll<HTMLInputElement | HTMLSelectElement>(
      'input[name], select[name]',
    )) {
      values[control.name] =
        control instanceof HTMLInputElement && control.type === 'checkbox' ? control.checked : control.value;
    }
    return values;
  }

  /** Puts back a snapshot (names it does not know are ignored). */
  restore(values: Record<string, unknown>): void {
    for (const control of this.element.querySelectorAll<HTMLInputElement | HTMLSelectElement>(
      'input[name], select[name]',
    )) {
      const value = values[control.name];
      if (value === undefined || control.name === 'stage') continue;
      if (control instanceof HTMLInputElement && control.type === 'checkbox')
        control.checked = Boolean(value);
      else control.value = String(value);
    }
    this.showRelevant();
  }

  /**
   * Sets the form from a LLaMA-Factory config (a loaded YAML); returns the keys it does not show,
   * which the caller keeps and sends along.
   */
  applyConfig(config: Record<string, unknown>): string[] {
    const rest: string[] = [];
    for (const [key, value] of Object.entries(config)) {
      const setting = NUMBER_SETTINGS.find((candidate) => candidate.yaml === key);
      if (setting && typeof value === 'number') this.numbers.get(setting.key)!.value = String(value);
      else if (key === 'finetuning_type' && typeof value === 'string') this.method.value = value;
      else if (key === 'use_dora') {
        if (value === true) this.method.value = 'dora';
      } else if (key === 'lr_scheduler_type') this.schedule.value = String(value);
      else if (key === 'lora_target')
        this.target.value = Array.isArray(value) ? value.join(',') : String(value);
      else if (key === 'pref_loss') this.preferenceLoss.value = String(value);
      else if (key === 'reward_model') this.rewardModel.value = String(value ?? '');
      else if (key === 'disable_gradient_checkpointing') this.checkpointing.checked = value !== true;
      else if (key === 'run_name') this.runName.value = String(value);
      else if (key === 'eval_strategy' || key === 'stage') continue;
      else rest.push(key);
    }
    this.showRelevant();
    return rest;
  }

  private showRelevant(): void {
    const method = this.method.value as MethodName;
    const stage = this.stage.value as StageName;
    for (const setting of NUMBER_SETTINGS) {
      const shown =
        (!setting.methods || setting.methods.includes(method)) &&
        (!setting.stages || setting.stages.includes(stage));
      this.fields.get(setting.key)!.hidden = !shown;
    }
    this.fields.get('loraTarget')!.hidden = !(method === 'lora' || method === 'dora');
    this.fields.get('preferenceLoss')!.hidden = stage !== 'dpo';
    this.fields.get('rewardModel')!.hidden = stage !== 'ppo';
  }

  /** The settings of a run in this browser: the config, the run's name, whether it resumes. */
  read(resume: boolean): TrainSettings {
    return { config: this.readLlamaFactory(), runName: this.runName.value.trim() || 'run-1', resume };
  }

  /**
   * The settings as a LLaMA-Factory config: what the worker plans in this browser, and what
   * `webtune webui` plans when the board drives it remotely. Hidden fields are left out.
   */
  readLlamaFactory(): BoardConfig {
    const method = this.method.value as MethodName;
    const stage = this.stage.value as StageName;
    const config: BoardConfig = {
      stage,
      ...methodConfig(method),
      lr_scheduler_type: this.schedule.value,
      disable_gradient_checkpointing: !this.checkpointing.checked,
      run_name: this.runName.value.trim() || 'run-1',
    };
    if (method === 'lora' || method === 'dora') config.lora_target = this.target.value;
    if (stage === 'dpo') config.pref_loss = this.preferenceLoss.value;
    // Left empty, the key is not sent: the run is refused with the reason (the form stays readable).
    if (stage === 'ppo' && this.rewardModel.value.trim()) config.reward_model = this.rewardModel.value.trim();
    for (const setting of NUMBER_SETTINGS) {
      if (this.fields.get(setting.key)!.hidden) continue;
      if (setting.optional && this.numbers.get(setting.key)!.value.trim() === '') continue;
      const value = this.number(setting.key);
      if (setting.unset !== undefined && value === setting.unset) continue;
      config[setting.yaml] = value;
    }
    if (config.eval_steps !== undefined) config.eval_strategy = 'steps';
    return config;
  }
}
