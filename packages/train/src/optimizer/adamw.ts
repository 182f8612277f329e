import { type AdamWUpdate, adamwSteps, type Device, type Tensor, zeros } from '@webtune/tensors';

/** AdamW's settings, with LLaMA-Factory's (Transformers') key names in the docs. */
export interface AdamWSettings {
  /** adam_beta1 (default 0.9). */
  beta1?: number;
  /** adam_beta2 (default 0.999). */
  beta2?: number;
  /** adam_epsilon (default 1e-8). */
  eps?: number;
  /** weight_decay (default 0), applied to every parameter except norms and biases. */
  weightDecay?: number;
  /**
   * Each parameter's learning rate as a multiple of the scheduled one (default 1 for all): the
   * optimizer's parameter groups, such as LoRA+'s (see lora-plus.ts).
   */
  learningRateScale?: (name: string, parameter: Tensor) => number;
}

const NORM = /(^|\.)[a-z_]*norm(\.|$)/i;

/**
 * Whether a parameter is left out of weight decay: biases and normalisation weights, as
 * Transformers' get_decay_parameter_names does (by module type there, by name here:
 * `*.bias`, `*norm*.weight` such as input_layernorm, q_norm and the final `model.norm`).
 */
export function excludedFromWeightDecay(name: string): boolean {
  return name.endsWith('bias') || NORM.test(name);
}

interface Slot {
  name: string;
  parameter: Tensor;
  /** First and second moments, f32, the parameter's shape. */
  m: Tensor;
  v: Tensor;
  decay: number;
  /** Multiple of the scheduled learning rate. */
  lrScale: number;
}

/**
 * torch.optim.AdamW over named parameters, a fused multi-tensor kernel (up to four tensors per
 * dispatch, adamwSteps). The moments live on the
 * device; `step` counts updates (bias correction), and the whole state can be written to and read
 * from a checkpoint so a resumed run continues exactly.
 */
export class AdamW {
  private readonly slots: Slot[];
  private readonly settings: Required<Omit<AdamWSettings, 'learningRateScale'>>;
  /** Updates applied so far. */
  stepCount = 0;

  constructor(device: Device, parameters: readonly [string, Tensor][], settings: AdamWSettings = {}) {
    this.settings = {
      beta1: settings.beta1 ?? 0.9,
      beta2: settings.beta2 ?? 0.999,
      eps: settings.eps ?? 1e-8,
      weightDecay: settings.weightDecay ?? 0,
    };
    this.slots = parameters.map(([name, parameter]) => ({
      name,
      parameter,
      m: zeros(device, parameter.shape, 'f32').keep(),
      v: zeros(device, parameter.shape, 'f32').keep(),
      decay: excludedFromWeightDecay(name) ? 0 : this.settings.weightDecay,
      lrScale: settings.learningRateScale?.(name, parameter) ?? 1,
    }));
  }

  /** Names of the parameters that decay (for the run summary). */
  decayedNames(): string[] {
    return this.slots.filter((slot) => slot.decay > 0).map((slot) => slot.name);
  }

  /**
   * One update of every parameter with its gradient (a parameter without one is skipped).
   * `gradScale` multiplies every gradient first (gradient clipping's factor, default 1).
   */
  step(
    gradients: ReadonlyMap<Tensor, Tensor>,
    learningRate: number,
    options: { gradScale?: number } = {},
  ): void {
    this.stepCount++;
    const updates: AdamWUpdate[] = [];
    for (const slot of this.slots) {
      const grad = gradients.get(slot.parameter);
      if (!grad) continue;
      updates.push({
        param: slot.parameter,
        grad,
        m: slot.m,
        v: slot.v,
        lr: learningRate * slot.lrScale,
        weightDecay: slot.decay,
      });
    }
    adamwSteps(updates, {
      step: this.stepCount,
      beta1: this.settings.beta1,
      beta2: this.settings.beta2,
      eps: this.settings.eps,
      gradScale: options.gradScale ?? 1,
    });
  }

  /** The moment tensors by checkpoint name: `<parameter>.exp_avg`, `<parameter>.exp_avg_sq` (PyTorch's keys). */
  stateTensors(): [string, Tensor][] {
    return this.slots.flatMap((slot) => [
      [`${slot.name}.exp_avg`, slot.m] as [string, Tensor],
      [`${slot.name}.exp_avg_sq`, slot.v] as [string, Tensor],
    ]);
  }

  dispose(): void {
    for (const slot of this.slots) {
      slot.m.dispose();
      slot.v.dispose();
    }
  }
}
