/**
 * How Dawn's Node bindings wait for the GPU, and why webtune changes it.
 *
 * While any promise of theirs is pending (mapAsync, onSubmittedWorkDone, pipeline creation),
 * the bindings call `globalThis.setImmediate` with a native callback that processes Dawn's
 * events and schedules itself again: a busy loop that keeps one CPU core at 100% for the whole
 * wait. On a GPU that costs a core; on a software adapter (lavapipe) it takes the core from the
 * rasteriser's own threads. Measured on a 2-core machine: a 150 ms compute job took 225-245 ms
 * while the loop spun, and 141-147 ms when it slept between polls.
 *
 * `installDawnPolling('sleep')` wraps `globalThis.setImmediate` so that a native callback (only
 * native addons pass those; JavaScript callbacks go straight through, untouched) is scheduled
 * after the thread sleeps (Atomics.wait, which uses no CPU) for a tenth of the time the current
 * wait has lasted, between 20 us and 1 ms. A wait so ends at most ~10% + 20 us late, and a long
 * wait polls a few hundred times a second instead of hundreds of thousands. Node only; browsers
 * wait natively.
 *
 * A wait whose kind the caller names (`expectDawnWait`: the command recorder names each read-back
 * by the work it waits for) is expected to last as long as the shortest of the last few of its
 * kind: its sleeps grow faster up to just before that, then it polls densely and backs off again
 * (poll-schedule.ts). In the polling bench on lavapipe a read-back so resolved 0.54-0.70 ms after
 * the job's end instead of 0.71-1.18 ms, with fewer polls and less CPU (load 7;
 * docs/architecture/tensors-layout.md, "Waiting for the GPU in Node").
 * 'sleep-blind' keeps the schedule that ignores the kind (for comparisons).
 */

import {
  AGE_POLL_SCHEDULE,
  DEFAULT_POLL_SCHEDULE,
  type PollSchedule,
  pollSleepMs,
  WaitHistory,
} from './poll-schedule.js';

export type DawnPolling = 'sleep' | 'sleep-blind' | 'spin';

const POLLING_MODES: readonly string[] = ['sleep', 'sleep-blind', 'spin'];
/** A poll more than this long after the previous one starts a new wait. */
const NEW_WAIT_GAP_MS = 2;

interface PollingState {
  mode: DawnPolling;
  original: typeof setImmediate;
  cell: Int32Array;
  waitStart: number;
  lastPoll: number;
  /** The poll before the last one (a named wait that ended was not yet seen then). */
  previousPoll: number;
  polls: number;
  sleptMs: number;
  /** Named waits begun (expectDawnWait) and, of those, the ones that had an expectation. */
  namedWaits: number;
  expectedWaits: number;
  /** Durations of named waits (expectDawnWait), per kind. */
  history: WaitHistory;
  /** The schedule of named waits in 'sleep' mode. */
  schedule: PollSchedule;
  /** The named wait in progress: when it began and how long it is expected to last. */
  named: { start: number; expectedMs: number | undefined } | null;
}

const STATE_KEY = Symbol.for('webtune.dawnPolling');

function state(): PollingState | undefined {
  return (globalThis as Record<symbol, PollingState | undefined>)[STATE_KEY];
}

/** Whether each callback seen is native, so a function scheduled again is not printed again. */
const nativeByFunction = new WeakMap<object, boolean>();

function isNativeFunction(fn: unknown): boolean {
  if (typeof fn !== 'function') return false;
  let native = nativeByFunction.get(fn);
  if (native === undefined) {
    native = Function.prototype.toString.call(fn).endsWith('{ [native code] }');
    nativeByFunction.set(fn, native);
  }
  return native;
}

/**
 * Sets how Dawn's Node bindings poll while they wait (see the module comment). Idempotent; a later
 * call changes the mode. The environment variable WEBTUNE_DAWN_POLLING (sleep|spin) overrides `mode`.
 */
export function installDawnPolling(
  mode: DawnPolling = 'sleep',
  /** Changes to the schedule of named waits (DEFAULT_POLL_SCHEDULE), for measurements. */
  schedule: Partial<PollSchedule> = {},
): DawnPolling {
  const env = typeof process !== 'undefined' ? process.env?.WEBTUNE_DAWN_POLLING : undefined;
  if (env !== undefined && !POLLING_MODES.includes(env))
    throw new Error(
      `WEBTUNE_DAWN_POLLING must be "sleep", "sleep-blind" or "spin", not ${JSON.stringify(env)}`,
    );
  const chosen: DawnPolling = (env as DawnPolling | undefined) ?? mode;
  const existing = state();
  if (existing) {
    existing.mode = chosen;
    existing.schedule = { ...DEFAULT_POLL_SCHEDULE, ...schedule };
    return chosen;
  }
  if (typeof globalThis.setImmediate !== 'function' || typeof SharedArrayBuffer === 'undefined')
    return chosen;
  const s: PollingState = {
    mode: chosen,
    original: globalThis.setImmediate,
    cell: new Int32Array(new SharedArrayBuffer(4)),
    waitStart: 0,
    lastPoll: Number.NEGATIVE_INFINITY,
    previousPoll: Number.NEGATIVE_INFINITY,
    polls: 0,
    sleptMs: 0,
    namedWaits: 0,
    expectedWaits: 0,
    history: new WaitHistory(),
    schedule: { ...DEFAULT_POLL_SCHEDULE, ...schedule },
    named: null,
  };
  (globalThis as Record<symbol, PollingState>)[STATE_KEY] = s;
  const wrapped = function setImmediate(callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (isNativeFunction(callback)) {
      s.polls++;
      if (s.mode === 'spin') return s.original(callback, ...args);
      const now = performance.now();
      if (now - s.lastPoll > NEW_WAIT_GAP_MS) s.waitStart = now;
      const named = s.named;
      const ms = named
        ? s.mode === 'sleep'
          ? pollSleepMs(now - named.start, named.expectedMs, s.schedule)
          : pollSleepMs(now - named.start, undefined, AGE_POLL_SCHEDULE)
        : pollSleepMs(now - s.waitStart, undefined, AGE_POLL_SCHEDULE);
      Atomics.wait(s.cell, 0, 0, ms);
      s.previousPoll = s.lastPoll;
      s.lastPoll = performance.now();
      s.sleptMs += ms;
    }
    return s.original(callback, ...args);
  } as typeof setImmediate;
  // Keep util.promisify(setImmediate) working (its custom form is an enumerable own property).
  Object.assign(wrapped, s.original);
  globalThis.setImmediate = wrapped;
  return chosen;
}

/**
 * Names the wait that starts now (`kind`: the same string for the same work, e.g. a read-back
 * after the same dispatches); call the returned function when it ends. The polls of a named wait
 * crowd around the end the last waits of its kind had (see the module comment). A no-op where the
 * wrapper is not installed (browsers); the last named wait wins where several overlap.
 */
export function expectDawnWait(kind: string): () => void {
  const s = state();
  if (!s) return () => {};
  const named = { start: performance.now(), expectedMs: s.history.expected(kind) };
  s.named = named;
  s.namedWaits++;
  if (named.expectedMs !== undefined) s.expectedWaits++;
  return () => {
    // The work ended after the last poll that did not see it: record that (a lower bound), not
    // when it was seen, or a wait seen late would teach the next one to be as late (the
    // expectation would shrink by only the guard per wait after one slow wait).
    s.history.record(kind, Math.max(0, s.previousPoll - named.start));
    if (s.named === named) s.named = null;
  };
}

/**
 * Native callbacks scheduled (Dawn's polls) and milliseconds slept before them, and the named
 * waits begun (`expectedWaits`: those a previous wait of the same kind gave an expectation), since
 * installDawnPolling (zeros if not installed).
 */
export function dawnPollingStats(): {
  mode: DawnPolling | 'none';
  polls: number;
  sleptMs: number;
  namedWaits: number;
  expectedWaits: number;
} {
  const s = state();
  return s
    ? {
        mode: s.mode,
        polls: s.polls,
        sleptMs: s.sleptMs,
        namedWaits: s.namedWaits,
        expectedWaits: s.expectedWaits,
      }
    : { mode: 'none', polls: 0, sleptMs: 0, namedWaits: 0, expectedWaits: 0 };
}
