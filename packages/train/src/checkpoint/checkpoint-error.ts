/** Why a checkpoint cannot be used: what the user asked for, and what the output folder holds. */
export type CheckpointProblem =
  /** resume_from_checkpoint: true, and the output folder has no complete checkpoint. */
  | 'none-found'
  /** resume_from_checkpoint names a folder that does not exist. */
  | 'not-found'
  /** resume_from_checkpoint: true, and every checkpoint there was saved by another run. */
  | 'other-run'
  /** A checkpoint's files are unreadable (its trainer_state.json, or a tensor file). */
  | 'unreadable';

/**
 * A checkpoint that cannot be resumed from, or a resume request with nothing to resume. A user's
 * setting to fix (resume_from_checkpoint, output_dir), never a reason to start over silently.
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
  constructor(
    message: string,
    readonly problem: CheckpointProblem,
  ) {
    super(message);
  }
}
