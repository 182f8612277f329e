import { describe, expect, it } from 'vitest';
import {
  AGE_POLL_SCHEDULE,
  DEFAULT_POLL_SCHEDULE,
  type PollSchedule,
  pollSleepMs,
  pollStartMs,
  WaitHistory,
} from './poll-schedule.js';

/**
 * Runs one wait on a fake clock: the work ends at `endMs`; each poll first sleeps what the
 * schedule says, then looks. Returns when the wait saw the end and how many polls it took.
 */
function simulate(endMs: number, expectedMs: number | undefined, schedule?: PollSchedule) {
  let clock = 0;
  let polls = 0;
  for (;;) {
    clock += pollSleepMs(clock, expectedMs, schedule);
    polls++;
    if (clock >= endMs) return { seenMs: clock, lateMs: clock - endMs, polls };
  }
}

describe('poll schedule', () => {
  it('without an expectation sleeps a tenth of the wait so far, between 20 us and 1 ms', () => {
    expect(pollSleepMs(0, undefined)).toBe(0.02);
    expect(pollSleepMs(1, undefined)).toBeCloseTo(0.1, 12);
    expect(pollSleepMs(5, undefined)).toBeCloseTo(0.5, 12);
    expect(pollSleepMs(50, undefined)).toBe(1);
    expect(pollStartMs(undefined)).toBe(0);
    // The age schedule is the same rule: waits nobody named keep their old behaviour.
    for (const elapsed of [0, 0.3, 2, 9, 40]) {
      expect(pollSleepMs(elapsed, undefined, AGE_POLL_SCHEDULE)).toBe(pollSleepMs(elapsed, undefined));
    }
  });

  it('sleeps up to a guard before the expected end in slices growing by half the age', () => {
    // Expected 10 ms: polling starts at 10 * 0.9 - 0.15 = 8.85 ms.
    expect(pollStartMs(10)).toBeCloseTo(8.85, 12);
    expect(pollSleepMs(0, 10)).toBe(0.02);
    expect(pollSleepMs(2, 10)).toBeCloseTo(1, 12); // half the age
    expect(pollSleepMs(8, 10)).toBeCloseTo(0.85, 12); // no further than the guard
    expect(pollSleepMs(30, 100)).toBe(8); // slices of at most leadMaxMs
    // From the guard on, the growing schedule starts again from its 20 us.
    expect(pollSleepMs(8.85, 10)).toBe(0.02);
    expect(pollSleepMs(9.85, 10)).toBeCloseTo(0.1, 12);
    // At most 0.25 ms until the wait is twice as long as expected, then up to 1 ms again.
    expect(pollSleepMs(15, 10)).toBe(0.25);
    expect(pollSleepMs(19.9, 10)).toBe(0.25);
    expect(pollSleepMs(30, 10)).toBe(1);
    // A tiny or meaningless expectation starts polling at once.
    expect(pollStartMs(0.1)).toBe(0);
    expect(pollStartMs(0)).toBe(0);
    expect(pollStartMs(Number.NaN)).toBe(0);
    expect(pollSleepMs(0, Number.NaN)).toBe(0.02);
  });

  it('sees a wait that ends as expected far sooner than the age schedule, with fewer polls', () => {
    let blindLate = 0;
    let expectedLate = 0;
    let blindPolls = 0;
    let expectedPolls = 0;
    let waits = 0;
    for (let ms = 2; ms < 60; ms += 0.37) {
      const blind = simulate(ms, undefined);
      const expected = simulate(ms, ms);
      // The age schedule is late by up to a tenth of the wait (at most 1 ms); the expectation
      // restarts the growing schedule a guard (10% + 0.15 ms) before the end.
      expect(blind.lateMs).toBeLessThanOrEqual(Math.min(1, 0.1 * ms) + 0.02 + 1e-9);
      expect(expected.lateMs).toBeLessThanOrEqual(0.1 * (0.1 * ms + 0.15) + 0.02 + 1e-9);
      blindLate += blind.lateMs;
      expectedLate += expected.lateMs;
      blindPolls += blind.polls;
      expectedPolls += expected.polls;
      waits++;
    }
    // On average about a third as late (the guard grows with the wait), with fewer polls.
    expect(expectedLate / waits).toBeLessThan(0.4 * (blindLate / waits));
    expect(expectedPolls).toBeLessThan(blindPolls);
    // 12.5 ms: ~1 ms late without the expectation, ~0.1 ms with it.
    expect(simulate(12.5, undefined).lateMs).toBeGreaterThan(0.3);
    expect(simulate(12.5, 12.5).lateMs).toBeLessThan(0.15);
  });

  it('backs off as before when the work runs longer than expected', () => {
    // Expected 10 ms, the work takes 40: after the guard the sleeps grow to 1 ms again.
    const long = simulate(40, 10);
    expect(long.lateMs).toBeLessThanOrEqual(1 + 1e-9);
    // It pays the 0.25 ms polls up to twice the expected time (at most 2 * 10 / 0.25 = 80 more).
    expect(long.polls).toBeLessThan(simulate(40, undefined).polls + (2 * 10) / 0.25);
    // Far past it, the sleeps are the age schedule's 1 ms again.
    expect(pollSleepMs(200, 10)).toBe(1);
    // Work that ends before the guard is seen at the end of the lead slice it ends in, never
    // after the guard.
    expect(simulate(7, 10).seenMs).toBeLessThanOrEqual(pollStartMs(10) + 1e-9);
    expect(simulate(8.5, 10).seenMs).toBeCloseTo(pollStartMs(10), 9);
  });

  it('is at most half a wait late when the expectation is far off', () => {
    // Other work under the same kind: expected 100 ms, done in 1-20 ms.
    for (let ms = 1; ms <= 20; ms += 0.7) {
      expect(simulate(ms, 100).lateMs).toBeLessThanOrEqual(0.5 * ms + 0.02 + 1e-9);
    }
  });

  it('uses the schedule it is given', () => {
    const tight: PollSchedule = { ...DEFAULT_POLL_SCHEDULE, maxMs: 0.5, guardFraction: 0.2, guardMs: 0 };
    expect(pollStartMs(10, tight)).toBeCloseTo(8, 12);
    expect(pollSleepMs(18, 10, tight)).toBe(0.25);
    expect(pollSleepMs(28, 10, tight)).toBe(0.5);
    expect(Object.isFrozen(DEFAULT_POLL_SCHEDULE)).toBe(true);
  });
});

describe('wait history', () => {
  it('expects the shortest of the last few waits of a kind', () => {
    const history = new WaitHistory(3);
    expect(history.expected('read:33')).toBeUndefined();
    history.record('read:33', 12);
    history.record('read:33', 9);
    history.record('read:7', 100);
    expect(history.expected('read:33')).toBe(9);
    expect(history.expected('read:7')).toBe(100);
    // One slow wait does not raise the expectation; the 9 ms one ages out after three more.
    history.record('read:33', 30);
    expect(history.expected('read:33')).toBe(9);
    history.record('read:33', 11);
    history.record('read:33', 10.5);
    expect(history.expected('read:33')).toBe(10.5);
    // Nonsense durations are ignored.
    history.record('read:33', Number.NaN);
    history.record('read:33', -1);
    history.record('read:33', Number.POSITIVE_INFINITY);
    expect(history.expected('read:33')).toBe(10.5);
  });

  it('keeps at most maxKinds kinds, dropping the oldest', () => {
    const history = new WaitHistory(4, 2);
    history.record('a', 1);
    history.record('b', 2);
    history.record('c', 3);
    expect(history.expected('a')).toBeUndefined();
    expect(history.expected('b')).toBe(2);
    expect(history.expected('c')).toBe(3);
  });
});
