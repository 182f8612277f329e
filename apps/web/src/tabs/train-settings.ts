import type { MethodName, MethodSettings, StageName, TrainSettings } from '../engine/protocol.js';
import { field, h, numberInput, select } from '../ui/dom.js';

export const STAGE_LABELS: Record<StageName, string> = {
  sft: 'SFT (answers)',
  dpo: 'DPO (preferences)',
  pt: 'Pretraining (text)',
};

export const METHOD_LABELS: Record<MethodName, string> = {
  lora: 'LoRA',
  dora: 'DoRA',
  adapter: 'Adapter (bottleneck)',
  freeze: 'Freeze (last layers)',
  full: 'Full',
};

/** LLaMA-Factory's defaults for the method settings. */
export function defaultMethodSettings(): MethodSettings {
  return {
    method: 'lora',
    loraRank: 8,
    loraAlpha: 16,
    loraDropout: 0,
    loraTarget: 'all',
    adapterSize: 64,
    freezeTrainableLayers: 2,
  };
}

interface NumberSetting {
  key: string;
  /** LLaMA-Factory's key, sent to `webtune webui`. */
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
}

/** The hyperparameters, with LLaMA Board's defaults and a line of help each. */
export const NUMBER_SETTINGS: NumberSetting[] = [
  {
    key: 'learningRate',
    yaml: 'learning_rate',
    label: 'Learning rate',
    help: 'Peak step size of AdamW. LoRA often uses 1e-4 to 2e-4; full tuning 1e-5.',
    value: 5e-5,
    min: 0,
  },
  {
    key: 'numTrainEpochs',
    yaml: 'num_train_epochs',
    label: 'Epochs',
    help: 'Passes over the training rows (fractions stop part-way).',
    value: 3,
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
  },
  {
    key: 'perDeviceTrainBatchSize',
    yaml: 'per_device_train_batch_size',
    label: 'Batch size',
    help: 'Rows per micro-batch on the GPU.',
    value: 2,
    min: 1,
    step: 1,
  },
  {
    key: 'gradientAccumulationSteps',
    yaml: 'gradient_accumulation_steps',
    label: 'Gradient accumulation',
    help: 'Micro-batches added up per optimizer step: the effective batch is batch size x this.',
    value: 8,
    min: 1,
    step: 1,
  },
  {
    key: 'warmupSteps',
    yaml: 'warmup_steps',
    label: 'Warmup steps',
    help: 'Steps over which the learning rate rises from 0.',
    value: 0,
    min: 0,
    step: 1,
  },
  {
    key: 'maxGradNorm',
    yaml: 'max_grad_norm',
    label: 'Max gradient norm',
    help: 'Clips the gradient to this global norm; 0 turns clipping off.',
    value: 1,
    min: 0,
  },
  {
    key: 'weightDecay',
    yaml: 'weight_decay',
    label: 'Weight decay',
    help: 'AdamW decay on weights (never on norms and biases).',
    value: 0,
    min: 0,
  },
  {
    key: 'loggingSteps',
    yaml: 'logging_steps',
    label: 'Logging steps',
    help: 'A trainer_log.jsonl row every N steps (the chart updates every step).',
    value: 5,
    min: 1,
    step: 1,
  },
  {
    key: 'saveSteps',
    yaml: 'save_steps',
    label: 'Save steps',
    help: 'A checkpoint in this browser’s private storage every N steps, to resume from.',
    value: 100,
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
  },
  {
    key: 'seed',
    yaml: 'seed',
    label: 'Seed',
    help: 'Fixes the data order, initialisation and dropout.',
    value: 42,
    step: 1,
  },
  {
    key: 'loraRank',
    yaml: 'lora_rank',
    label: 'LoRA rank',
    help: 'Width of the low-rank update; higher learns more and costs more.',
    value: 8,
    min: 1,
    step: 1,
    methods: ['lora', 'dora'],
  },
  {
    key: 'loraAlpha',
    yaml: 'lora_alpha',
    label: 'LoRA alpha',
    help: 'Scale of the update (alpha / rank); LLaMA-Factory uses 2 x rank.',
    value: 16,
    min: 0,
    methods: ['lora', 'dora'],
  },
  {
    key: 'loraDropout',
    yaml: 'lora_dropout',
    label: 'LoRA dropout',
    help: 'Dropout on the adapter input while training.',
    value: 0,
    min: 0,
    max: 0.99,
    methods: ['lora', 'dora'],
  },
  {
    key: 'adapterSize',
    yaml: 'adapter_size',
    label: 'Adapter width',
    help: 'Bottleneck width of each adapter block.',
    value: 64,
    min: 1,
    step: 1,
    methods: ['adapter'],
  },
  {
    key: 'freezeTrainableLayers',
    yaml: 'freeze_trainable_layers',
    label: 'Trainable layers',
    help: 'The last N layers train (a negative N: the first |N|).',
    value: 2,
    step: 1,
    methods: ['freeze'],
  },
  {
    key: 'prefBeta',
    yaml: 'pref_beta',
    label: 'DPO beta',
    help: 'How far the policy may move from the reference model.',
    value: 0.1,
    min: 0,
    stages: ['dpo'],
  },
];

const SCHEDULES: [string, string][] = [
  ['cosine', 'cosine'],
  ['linear', 'linear'],
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

  constructor() {
    this.stage = select('stage', Object.entries(STAGE_LABELS), 'sft');
    this.method = select('method', Object.entries(METHOD_LABELS), 'lora');
    this.schedule = select('lr_scheduler_type', SCHEDULES, 'cosine');
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
    this.checkpointing = h('input', { type: 'checkbox', name: 'gradient_checkpointing', checked: true });
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
    this.element = h(
      'div',
      { class: 'train-settings' },
      h(
        'div',
        { class: 'form-grid' },
        field(
          'Stage',
          this.stage,
          'What the model learns from: answers (SFT), preferred vs rejected answers (DPO), or raw text.',
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

  /** Sets a number field (tests and presets). */
  set(key: string, value: number): void {
    const input = this.numbers.get(key);
    if (input) input.value = String(value);
  }

  private number(key: string): number {
    const input = this.numbers.get(key)!;
    const value = Number(input.value);
    if (input.value.trim() === '' || !Number.isFinite(value)) {
      throw new Error(`${input.name} must be a number`);
    }
    return value;
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
  }

  /** The settings of a run in this browser. */
  read(resume: boolean): TrainSettings {
    const maxSteps = this.number('maxSteps');
    const evalSteps = this.number('evalSteps');
    return {
      stage: this.stage.value as StageName,
      method: {
        method: this.method.value as MethodName,
        loraRank: this.number('loraRank'),
        loraAlpha: this.number('loraAlpha'),
        loraDropout: this.number('loraDropout'),
        loraTarget: this.target.value,
        adapterSize: this.number('adapterSize'),
        freezeTrainableLayers: this.number('freezeTrainableLayers'),
      },
      args: {
        learningRate: this.number('learningRate'),
        numTrainEpochs: this.number('numTrainEpochs'),
        maxSteps: maxSteps > 0 ? maxSteps : -1,
        perDeviceTrainBatchSize: this.number('perDeviceTrainBatchSize'),
        gradientAccumulationSteps: this.number('gradientAccumulationSteps'),
        lrSchedulerType: this.schedule.value as never,
        warmupSteps: this.number('warmupSteps'),
        maxGradNorm: this.number('maxGradNorm'),
        weightDecay: this.number('weightDecay'),
        loggingSteps: this.number('loggingSteps'),
        saveSteps: this.number('saveSteps'),
        evalSteps: evalSteps > 0 ? evalSteps : null,
        seed: this.number('seed'),
        gradientCheckpointing: this.checkpointing.checked,
      },
      preference: {
        beta: this.number('prefBeta'),
        loss: this.preferenceLoss.value as 'sigmoid' | 'hinge' | 'ipo',
      },
      runName: this.runName.value.trim() || 'run-1',
      resume,
    };
  }

  /** The same settings as LLaMA-Factory YAML keys, for `webtune webui`. */
  readLlamaFactory(): Record<string, unknown> {
    const settings = this.read(false);
    const method = settings.method.method;
    const config: Record<string, unknown> = {
      stage: settings.stage,
      finetuning_type: method === 'dora' ? 'lora' : method,
      lr_scheduler_type: this.schedule.value,
      disable_gradient_checkpointing: !this.checkpointing.checked,
      run_name: settings.runName,
    };
    if (method === 'dora') config.use_dora = true;
    if (method === 'lora' || method === 'dora') config.lora_target = this.target.value;
    if (settings.stage === 'dpo') config.pref_loss = this.preferenceLoss.value;
    for (const setting of NUMBER_SETTINGS) {
      if (this.fields.get(setting.key)!.hidden) continue;
      const value = this.number(setting.key);
      if ((setting.key === 'maxSteps' || setting.key === 'evalSteps') && value <= 0) continue;
      config[setting.yaml] = value;
    }
    return config;
  }
}
