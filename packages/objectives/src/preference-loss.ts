import { autograd, concat, noGrad, type Tensor, TensorError } from '@webtune/tensors';
import { logSigmoid } from './log-sigmoid.js';

/** LLaMA-Factory's `pref_loss`. ORPO and SimPO need no reference model. */
export type PreferenceLossType = 'sigmoid' | 'hinge' | 'ipo' | 'orpo' | 'simpo';

export const PREFERENCE_LOSS_TYPES: readonly PreferenceLossType[] = [
  'sigmoid',
  'hinge',
  'ipo',
  'orpo',
  'simpo',
];

/** Whether a loss type compares against a reference model. */
export function needsReference(type: PreferenceLossType): boolean {
  return type === 'sigmoid' || type === 'hinge' || type === 'ipo';
}

/** Whether a loss type works on length-averaged log-probabilities (LLaMA-Factory averages these). */
export function averagesLogProbs(type: PreferenceLossType): boolean {
  return type === 'ipo' || type === 'orpo' || type === 'simpo';
}

export interface PreferenceLossOptions {
  /** `pref_loss` (default 'sigmoid'). */
  loss?: PreferenceLossType;
  /** `pref_beta`, the inverse temperature (default 0.1). */
  beta?: number;
  /** `dpo_label_smoothing` for the sigmoid loss: the share of pairs assumed mislabelled (default 0). */
  labelSmoothing?: number;
  /** `simpo_gamma`, SimPO's target reward margin (default 0.5). */
  simpoGamma?: number;
  /** `pref_ftx`: weight of the SFT loss on the chosen answer added to the loss (default 0). */
  ftx?: number;
  /**
   * The per-pair losses are summed and divided by this (default: the pairs given, a mean). A
   * trainer that accumulates micro-batches passes the pairs of the whole optimizer step.
   */
  normalizer?: number;
}

/**
 * Summed log-probabilities of the chosen and rejected answers of each pair ([pairs] each, see
 * `sequenceLogProbs`) and the trained tokens of each answer (f32 [pairs]), which the averaged
 * losses (IPO, ORPO, SimPO) and `pref_ftx` divide by.
 */
export interface PairLogProbs {
  chosen: Tensor;
  rejected: Tensor;
  chosenLengths: Tensor;
  rejectedLengths: Tensor;
}

/** Per-pair values behind the metrics, detached from the graph ([pairs] each). */
export interface PreferenceStatistics {
  losses: Tensor;
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  /** The policy's log-probabilities as the loss saw them (averaged for IPO, ORPO, SimPO). */
  chosenLogps: Tensor;
  rejectedLogps: Tensor;
  /** -chosen average log-probability: the SFT part (ORPO's, and what `pref_ftx` adds). */
  sftLosses: Tensor;
}

export interface PreferenceLossResult {
  /** The scalar to differentiate: sum of per-pair losses / normalizer. */
  loss: Tensor;
  statistics: PreferenceStatistics;
}

/**
 * The DPO family as LLaMA-Factory computes it (TRL's dpo_loss plus its ORPO and SimPO), with
 * x = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected):
 *
 *     sigmoid  -(1 - s) log sigmoid(beta x) - s log sigmoid(-beta x)       s = label smoothing
 *     hinge    relu(1 - beta x)
 *     ipo      (x - 1 / (2 beta))^2                                         on averaged log-probs
 *     orpo     -c + beta * -log sigmoid((c - r) - (log(1 - e^c) - log(1 - e^r)))   averaged c, r
 *     simpo    -log sigmoid(beta (c - r) - gamma)                           averaged c, r
 *
 * Rewards are beta (policy - reference) per answer (beta * policy for ORPO and SimPO), detached.
 * With `ftx` > 0, ftx times the SFT loss on the chosen answer (-average log-prob) is added per pair.
 * `reference` is required for sigmoid, hinge and IPO and ignored by ORPO and SimPO; its values
 * are constants (compute them under noGrad, see reference-log-probs.ts).
 */
export function preferenceLoss(
  policy: PairLogProbs,
  reference: Pick<PairLogProbs, 'chosen' | 'rejected'> | null,
  options: PreferenceLossOptions = {},
): PreferenceLossResult {
  const type = options.loss ?? 'sigmoid';
  const beta = options.beta ?? 0.1;
  const smoothing = options.labelSmoothing ?? 0;
  const gamma = options.simpoGamma ?? 0.5;
  const ftx = options.ftx ?? 0;
  const pairs = policy.chosen.size;
  checkOptions(type, beta, smoothing, options.normalizer);
  for (const [name, t] of Object.entries(policy)) {
    if (t.size !== pairs) {
      throw new TensorError(`preferenceLoss: policy.${name} ${t.describe()} must have ${pairs} values`);
    }
  }
  if (needsReference(type) && !reference) {
    throw new TensorError(`preferenceLoss: the '${type}' loss needs reference log-probabilities`);
  }

  const average = averagesLogProbs(type);
  const chosenAverage = autograd.div(policy.chosen, policy.chosenLengths);
  const chosen = average ? chosenAverage : policy.chosen;
  const rejected = average ? autograd.div(policy.rejected, policy.rejectedLengths) : policy.rejected;
  const referenceChosen =
    reference && average ? autograd.div(reference.chosen, policy.chosenLengths) : reference?.chosen;
  const referenceRejected =
    reference && average ? autograd.div(reference.rejected, policy.rejectedLengths) : reference?.rejected;

  let losses: Tensor;
  const policyMargin = autograd.sub(chosen, rejected);
  if (type === 'orpo') {
    // log odds(p) = log p - log(1 - p), p the average per-token probability.
    const logOneMinus = (logp: Tensor) => autograd.log(autograd.add(autograd.neg(autograd.exp(logp)), 1));
    const logOdds = autograd.sub(policyMargin, autograd.sub(logOneMinus(chosen), logOneMinus(rejected)));
    const oddsRatioLoss = autograd.neg(logSigmoid(logOdds));
    losses = autograd.add(autograd.neg(chosen), autograd.scale(oddsRatioLoss, beta));
  } else if (type === 'simpo') {
    losses = autograd.neg(logSigmoid(autograd.sub(autograd.scale(policyMargin, beta), gamma)));
  } else {
    const referenceMargin = autograd.sub(referenceChosen!, referenceRejected!);
    const x = autograd.sub(policyMargin, referenceMargin);
    if (type === 'sigmoid') {
      const scaled = autograd.scale(x, beta);
      losses = autograd.neg(autograd.scale(logSigmoid(scaled), 1 - smoothing));
      if (smoothing > 0) {
        losses = autograd.sub(losses, autograd.scale(logSigmoid(autograd.neg(scaled)), smoothing));
      }
    } else if (type === 'hinge') {
      losses = autograd.relu(autograd.add(autograd.scale(x, -beta), 1));
    } else {
      losses = autograd.square(autograd.sub(x, 1 / (2 * beta)));
    }
  }
  if (ftx > 0) losses = autograd.add(losses, autograd.scale(autograd.neg(chosenAverage), ftx));
  const loss = autograd.scale(autograd.sum(losses, null), 1 / (options.normalizer ?? pairs));

  const statistics = noGrad(() => {
    const reward = (policyValue: Tensor, referenceValue: Tensor | undefined) =>
      autograd.scale(referenceValue ? autograd.sub(policyValue, referenceValue) : policyValue, beta);
    return {
      // A copy, so the statistics outlive nothing of the graph.
      losses: autograd.scale(losses, 1),
      chosenRewards: reward(chosen, needsReference(type) ? referenceChosen : undefined),
      rejectedRewards: reward(rejected, needsReference(type) ? referenceRejected : undefined),
      chosenLogps: autograd.scale(chosen, 1),
      rejectedLogps: autograd.scale(rejected, 1),
      sftLosses: autograd.neg(chosenAverage),
    };
  });
  return { loss, statistics };
}

function checkOptions(type: PreferenceLossType, beta: number, smoothing: number, normalizer?: number): void {
  if (!PREFERENCE_LOSS_TYPES.includes(type)) {
    throw new TensorError(`preferenceLoss: unknown loss '${type}' (use ${PREFERENCE_LOSS_TYPES.join(', ')})`);
  }
  if (!(beta > 0)) throw new TensorError(`preferenceLoss: beta ${beta} must be > 0`);
  if (!(smoothing >= 0 && smoothing <= 0.5)) {
    throw new TensorError(`preferenceLoss: labelSmoothing ${smoothing} must be in [0, 0.5]`);
  }
  if (normalizer !== undefined && !(normalizer > 0)) {
    throw new TensorError(`preferenceLoss: normalizer ${normalizer} must be > 0`);
  }
}

/** Host copies of the statistics of one batch, read back in one transfer. */
export interface PreferenceStatisticsValues {
  losses: Float32Array;
  chosenRewards: Float32Array;
  rejectedRewards: Float32Array;
  chosenLogps: Float32Array;
  rejectedLogps: Float32Array;
  sftLosses: Float32Array;
}

const STATISTIC_NAMES = [
  'losses',
  'chosenRewards',
  'rejectedRewards',
  'chosenLogps',
  'rejectedLogps',
  'sftLosses',
] as const satisfies readonly (keyof PreferenceStatistics)[];

/** Reads the statistics back with one readback (a sync point) and disposes nothing. */
export async function readPreferenceStatistics(
  statistics: PreferenceStatistics,
): Promise<PreferenceStatisticsValues> {
  const pairs = statistics.losses.size;
  const device = statistics.losses.device;
  const packed = device.scope(() =>
    concat(
      STATISTIC_NAMES.map((name) => statistics[name].reshape([pairs])),
      0,
    ).keep(),
  );
  const values = (await packed.toArray()) as Float32Array;
  packed.dispose();
  const out = {} as PreferenceStatisticsValues;
  STATISTIC_NAMES.forEach((name, i) => {
    out[name] = values.slice(i * pairs, (i + 1) * pairs);
  });
  return out;
}
