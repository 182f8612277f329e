/** What the loss diagnostics can report. */
export type DiagnosticKind = 'loss-spike' | 'loss-collapse' | 'non-finite' | 'loss-plateau' | 'overfitting';

/** A finding about the run, in plain language, with what to do about it. */
export interface Diagnostic {
  kind: DiagnosticKind;
  /** The optimizer step it was seen at. */
  step: number;
  /** 'error' stops the run (non-finite values); 'warning' does not. */
  severity: 'warning' | 'error';
  message: string;
  advice: string;
  /** For non-finite values: the tensor where they appeared ('loss' or a parameter's gradient). */
  tensor?: string;
}

export interface LossDiagnosticsOptions {
  totalSteps: number;
  /** Steps compared for spikes and plateaus (default max(10, 10% of the run)). */
  window?: number;
}

interface State {
  losses: number[];
  evals: { step: number; loss: number; trainMean: number }[];
  reported: Partial<Record<DiagnosticKind, number>>;
}

/**
 * Watches the train and eval losses and explains what looks wrong. An object like a metric:
 * observe values, get findings; its state goes into checkpoints so a resumed run judges alike.
 *
 * - spike: a step's loss at least twice the median of the steps before it (and 0.1 above it);
 * - collapse: the loss below 0.05 within the first 30% of the run;
 * - plateau: the mean loss of the last window within 1% of the window before it;
 * - overfitting: eval loss up at two evaluations in a row while the train loss went down.
 * Each is reported at most once per window (collapse and overfitting once per run).
 */
export class LossDiagnostics {
  private state: State = { losses: [], evals: [], reported: {} };
  private readonly window: number;

  constructor(private readonly options: LossDiagnosticsOptions) {
    this.window = options.window ?? Math.max(10, Math.round(options.totalSteps / 10));
  }

  /** Records the train loss of `step` (1-based, after the update) and returns findings. */
  observeTrain(step: number, loss: number): Diagnostic[] {
    const { losses } = this.state;
    const findings: Diagnostic[] = [];
    const recent = losses.slice(-this.window);
    if (recent.length >= 5) {
      const median = [...recent].sort((a, b) => a - b)[Math.floor(recent.length / 2)];
      if (loss >= 2 * median && loss - median > 0.1 && this.allowed('loss-spike', step, this.window)) {
        findings.push({
          kind: 'loss-spike',
          step,
          severity: 'warning',
          message: `The loss jumped to ${loss.toFixed(3)} at step ${step}, more than twice the recent ${median.toFixed(3)}.`,
          advice:
            'The learning rate is likely too high: lower it (halve it), add warmup, or keep gradient clipping on (max_grad_norm 1.0).',
        });
      }
    }
    const early = step <= Math.max(10, 0.3 * this.options.totalSteps);
    if (loss < 0.05 && early && this.allowed('loss-collapse', step, Number.POSITIVE_INFINITY)) {
      findings.push({
        kind: 'loss-collapse',
        step,
        severity: 'warning',
        message: `The loss fell to ${loss.toFixed(4)} by step ${step} of ${this.options.totalSteps}: the model is memorising the training rows.`,
        advice:
          'There is likely too little (or too repetitive) data for this many steps: add data, train fewer epochs, or lower the learning rate; check the eval loss.',
      });
    }
    losses.push(loss);
    if (losses.length >= 2 * this.window) {
      const last = mean(losses.slice(-this.window));
      const before = mean(losses.slice(-2 * this.window, -this.window));
      if (
        last > 0.1 &&
        before - last < 0.01 * before &&
        this.allowed('loss-plateau', step, 2 * this.window)
      ) {
        findings.push({
          kind: 'loss-plateau',
          step,
          severity: 'warning',
          message: `The loss has stayed near ${last.toFixed(3)} for the last ${2 * this.window} steps.`,
          advice:
            'Training has stopped improving: stop here, or try a higher learning rate, a larger LoRA rank (or more target modules), or check that the labels mark the answers.',
        });
      }
    }
    // Only what spikes and plateaus look at is kept.
    if (losses.length > 2 * this.window) losses.splice(0, losses.length - 2 * this.window);
    return findings;
  }

  /** Records an evaluation at `step` and returns findings. */
  observeEval(step: number, evalLoss: number): Diagnostic[] {
    const trainMean = mean(this.state.losses.slice(-this.window));
    const evals = this.state.evals;
    evals.push({ step, loss: evalLoss, trainMean });
    if (evals.length > 3) evals.shift();
    if (evals.length < 3) return [];
    const [a, b, c] = evals;
    const evalRising = b.loss > a.loss && c.loss > b.loss;
    const trainFalling = c.trainMean < a.trainMean;
    if (!evalRising || !trainFalling || !this.allowed('overfitting', step, Number.POSITIVE_INFINITY))
      return [];
    return [
      {
        kind: 'overfitting',
        step,
        severity: 'warning',
        message: `The eval loss rose from ${a.loss.toFixed(3)} to ${c.loss.toFixed(3)} since step ${a.step} while the train loss kept falling: the model is overfitting.`,
        advice: `Train fewer epochs (the eval loss was lowest near step ${a.step}), add data, or lower the learning rate; keep the checkpoint from before the rise.`,
      },
    ];
  }

  /** The error for a NaN or infinite value: the run stops and the last good checkpoint is kept. */
  nonFinite(step: number, tensor: string, value: number, lastCheckpoint: string | null = null): Diagnostic {
    return {
      kind: 'non-finite',
      step,
      severity: 'error',
      tensor,
      message: `Step ${step} produced ${value} in ${tensor}; training stopped before the update, so the weights are still those of step ${step - 1}.`,
      // Only a checkpoint that exists is suggested (a lower learning rate is another run's
      // setting, so the resume names the folder).
      advice: `${
        lastCheckpoint
          ? `Resume from ${lastCheckpoint} (resume_from_checkpoint: ${lastCheckpoint}) with a lower learning rate (and clipping on)`
          : 'No checkpoint was saved before it: start over with a lower learning rate (and clipping on)'
      }, or look for an empty or corrupt row in the batch; in f16, switch to f32.`,
    };
  }

  /** A copy of the state, for checkpoints. */
  snapshot(): unknown {
    return structuredClone(this.state);
  }

  restore(snapshot: unknown): void {
    if (snapshot) this.state = structuredClone(snapshot as State);
  }

  private allowed(kind: DiagnosticKind, step: number, every: number): boolean {
    const last = this.state.reported[kind];
    if (last !== undefined && step - last < every) return false;
    this.state.reported[kind] = step;
    return true;
  }
}

function mean(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0) / Math.max(1, values.length);
}
