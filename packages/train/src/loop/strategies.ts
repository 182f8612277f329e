import type { ResolvedTrainingArguments } from '../config/training-arguments.js';

/** Where a step stands when the loop asks whether to evaluate or save after it. */
export interface StepBoundary {
  step: number;
  totalSteps: number;
  /** The step used up the last micro-batch of its epoch. */
  endsEpoch: boolean;
}

/**
 * Evaluate after this step? 'steps': every evalSteps steps and at the last step; 'epoch': at the
 * end of every epoch and at the last step (a fractional last epoch ends there).
 */
export function shouldEvaluate(args: ResolvedTrainingArguments, at: StepBoundary): boolean {
  const last = at.step === at.totalSteps;
  if (args.evalStrategy === 'steps')
    return args.evalSteps !== null && (at.step % args.evalSteps === 0 || last);
  if (args.evalStrategy === 'epoch') return at.endsEpoch || last;
  return false;
}

/** Save a checkpoint after this step? 'steps': every saveSteps steps; 'epoch': at the end of every epoch. */
export function shouldSave(args: ResolvedTrainingArguments, at: StepBoundary): boolean {
  if (args.saveStrategy === 'steps') return args.saveSteps !== null && at.step % args.saveSteps === 0;
  if (args.saveStrategy === 'epoch') return at.endsEpoch || at.step === at.totalSteps;
  return false;
}
