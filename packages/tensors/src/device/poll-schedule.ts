/**
 * When the Dawn polling wrapper (dawn-polling.ts) polls during one wait: pure functions of the
 * time the wait has lasted and, where known, how long the same kind of wait lasted before.
 *
 * Without an expectation a wait sleeps a `fraction` of its age between polls (20 us at first, at
 * most 1 ms), so it ends at most ~10% late: ~1 ms on a 10 ms prefill. With one (the shortest of
 * the last few waits of the same kind, `WaitHistory`), the wait's sleeps grow faster (half its age)
 * up to a guard before the expected end, then the growing schedule starts again from there: the
 * polls crowd where the work is likely to finish, a wait that runs long backs off as before, and
 * one that ends far sooner than expected is at most half its duration late.
 */

export interface PollSchedule {
  /** Shortest and longest sleep between two polls of the growing schedule, in ms. */
  minMs: number;
  maxMs: number;
  /** Sleep this share of the time since the schedule (re)started. */
  fraction: number;
  /**
   * Longest sleep after the guard while the wait is not yet twice as long as expected (then
   * maxMs): a wait that runs a little long is still seen soon, one far off backs off.
   */
  nearMaxMs: number;
  /** Start polling this share of the expected time before the expected end ... */
  guardFraction: number;
  /** ... and at least this many ms before it. */
  guardMs: number;
  /** Longest single sleep while the expected end is still far (keeps other JavaScript responsive). */
  leadMaxMs: number;
  /**
   * Before the guard, sleep at most this share of the wait's age (at least minMs): the sleeps
   * grow by half each poll, so a wrong expectation (other work under the same kind) makes a wait
   * at most this share late, never a whole expected duration.
   */
  leadGrowth: number;
}

/** The schedule of waits with an expectation ('sleep' mode of installDawnPolling). */
export const DEFAULT_POLL_SCHEDULE: Readonly<PollSchedule> = Object.freeze({
  minMs: 0.02,
  maxMs: 1,
  fraction: 0.1,
  nearMaxMs: 0.25,
  guardFraction: 0.1,
  guardMs: 0.15,
  leadMaxMs: 8,
  leadGrowth: 0.5,
});

/** The schedule by the wait's age alone (waits nobody named, and 'sleep-blind'). */
export const AGE_POLL_SCHEDULE: Readonly<PollSchedule> = Object.freeze({
  ...DEFAULT_POLL_SCHEDULE,
  maxMs: 1,
  fraction: 0.1,
});

/** When (ms into the wait) the growing schedule starts: 0, or a guard before the expected end. */
export function pollStartMs(
  expectedMs: number | undefined,
  schedule: PollSchedule = DEFAULT_POLL_SCHEDULE,
): number {
  if (expectedMs === undefined || !(expectedMs > 0)) return 0;
  return Math.max(0, expectedMs * (1 - schedule.guardFraction) - schedule.guardMs);
}

/**
 * Milliseconds to sleep before the next poll of a wait that has lasted `elapsedMs`, expected to
 * last `expectedMs` in all (undefined: unknown).
 */
export function pollSleepMs(
  elapsedMs: number,
  expectedMs: number | undefined,
  schedule: PollSchedule = DEFAULT_POLL_SCHEDULE,
): number {
  const start = pollStartMs(expectedMs, schedule);
  if (elapsedMs < start)
    return Math.min(
      start - elapsedMs,
      schedule.leadMaxMs,
      Math.max(schedule.minMs, schedule.leadGrowth * elapsedMs),
    );
  const near = expectedMs !== undefined && start > 0 && elapsedMs < 2 * expectedMs;
  const longest = near ? Math.min(schedule.nearMaxMs, schedule.maxMs) : schedule.maxMs;
  return Math.min(longest, Math.max(schedule.minMs, schedule.fraction * (elapsedMs - start)));
}

/**
 * The durations of recent waits per kind (a key naming the work waited for): the expectation of
 * the next is the shortest of the last `keep`, so one slow wait (a busy machine, a GC pause) does
 * not make the next one late. Kinds are few (one per distinct read-back); the oldest kind is
 * dropped past `maxKinds`.
 */
export class WaitHistory {
  private readonly waits = new Map<string, number[]>();

  constructor(
    private readonly keep = 4,
    private readonly maxKinds = 256,
  ) {}

  record(kind: string, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    let list = this.waits.get(kind);
    if (!list) {
      if (this.waits.size >= this.maxKinds) {
        const oldest = this.waits.keys().next().value;
        if (oldest !== undefined) this.waits.delete(oldest);
      }
      list = [];
      this.waits.set(kind, list);
    }
    list.push(ms);
    if (list.length > this.keep) list.shift();
  }

  /** The shortest recent wait of this kind, or undefined before the first. */
  expected(kind: string): number | undefined {
    const list = this.waits.get(kind);
    return list && list.length > 0 ? Math.min(...list) : undefined;
  }
}
