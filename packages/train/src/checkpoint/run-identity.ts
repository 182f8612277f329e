import type { ResolvedTrainingArguments } from '../config/training-arguments.js';
import type { TrainerState } from './checkpoint.js';

/**
 * Settings that do not change what a run computes: how often it logs, evaluates and saves, what
 * to resume from. A resume may change them; every other setting belongs to the run's identity.
 */
const OPERATIONAL_KEYS: readonly (keyof ResolvedTrainingArguments)[] = [
  'resumeFromCheckpoint',
  'loggingSteps',
  'evalSteps',
  'saveSteps',
  'evalStrategy',
  'saveStrategy',
  'saveTotalLimit',
  'perDeviceEvalBatchSize',
  'gradientCheckpointing',
];

/**
 * The identity of a run: a SHA-256 (hex, 16 characters) of the settings that decide its result
 * (learning rate, schedule, optimizer, seed, the data plan, the base model). Every checkpoint
 * records it, so `resumeFromCheckpoint: true` picks only checkpoints of the same run.
 */
export async function runIdentity(
  args: ResolvedTrainingArguments,
  plan: TrainerState['plan'],
): Promise<string> {
  const settings: Record<string, unknown> = {};
  for (const key of Object.keys(args).sort() as (keyof ResolvedTrainingArguments)[]) {
    if (OPERATIONAL_KEYS.includes(key)) continue;
    // LoRA+ keys count only when LoRA+ is on (identities of runs without it stay as they were).
    if (key.startsWith('loraplus') && args.loraplusLrRatio === null) continue;
    // So does f16 activation storage (identities of runs without it stay as they were).
    if (key === 'activationDtype' && args.activationDtype === 'f32') continue;
    settings[key] = args[key];
  }
  const text = JSON.stringify({ settings, plan });
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).slice(0, 8), (byte) => byte.toString(16).padStart(2, '0')).join(
    '',
  );
}
