import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matmul } from '../kernels/matmul/matmul.js';
import { rand } from '../ops/creation.js';
import { createDevice } from './create-device.js';
import { dawnPollingStats, expectDawnWait, installDawnPolling } from './dawn-polling.js';
import type { Device } from './device.js';

let device: Device;
beforeAll(async () => {
  device = await createDevice();
});
afterAll(() => {
  installDawnPolling('sleep');
});

describe('Dawn polling', () => {
  it('is installed by createDevice in Node and leaves JavaScript callbacks alone', async () => {
    expect(dawnPollingStats().mode).toBe(process.env.WEBTUNE_DAWN_POLLING ?? 'sleep');
    const before = dawnPollingStats().polls;
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      setImmediate(
        (a: string, b: string) => {
          order.push(a, b);
          resolve();
        },
        'x',
        'y',
      );
    });
    expect(order).toEqual(['x', 'y']);
    expect(await promisify(setImmediate)('value')).toBe('value');
    expect(dawnPollingStats().polls).toBe(before);
  });

  it('decides "native or not" once per callback function', async () => {
    const printed = Function.prototype.toString;
    let prints = 0;
    Function.prototype.toString = function (this: unknown) {
      prints++;
      return printed.call(this);
    };
    try {
      const callback = () => {};
      for (let i = 0; i < 5; i++)
        await new Promise<void>((resolve) => setImmediate(callback) && setImmediate(resolve));
      // callback once, and each fresh resolve once.
      expect(prints).toBeLessThanOrEqual(1 + 5);
      const again = prints;
      await new Promise<void>((resolve) => setImmediate(callback) && setImmediate(resolve));
      expect(prints - again).toBe(1);
    } finally {
      Function.prototype.toString = printed;
    }
  });

  it('counts and delays native callbacks only, by at most 1 ms', async () => {
    installDawnPolling('sleep');
    const before = dawnPollingStats();
    // Math.random is a native function, as the callbacks Dawn's bindings schedule are.
    await new Promise<void>((resolve) => {
      setImmediate(Math.random);
      setImmediate(resolve);
    });
    const after = dawnPollingStats();
    // Dawn's own polls may land in the same turn; each sleeps at most 1 ms.
    const polls = after.polls - before.polls;
    expect(polls).toBeGreaterThanOrEqual(1);
    expect(after.sleptMs - before.sleptMs).toBeGreaterThan(0);
    expect(after.sleptMs - before.sleptMs).toBeLessThanOrEqual(polls);
  });

  it('sleeps a named wait toward the end its kind had, unless blind', async () => {
    // Slept per poll during one turn of the event loop (Dawn's own polls may land in it too).
    const pollOnce = async () => {
      const before = dawnPollingStats();
      await new Promise<void>((resolve) => {
        setImmediate(Math.random);
        setImmediate(resolve);
      });
      const after = dawnPollingStats();
      return (after.sleptMs - before.sleptMs) / Math.max(1, after.polls - before.polls);
    };
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // the work being waited for
      }
    };
    try {
      installDawnPolling('sleep');
      // A first wait of this kind lasting ~30 ms: nothing to expect, the age schedule (a tenth of
      // the wait so far, at most 1 ms).
      const first = expectDawnWait('test:named');
      busy(27);
      expect(await pollOnce()).toBeLessThanOrEqual(1);
      busy(3);
      await pollOnce(); // the poll that sees the end (the last that did not was ~27 ms in)
      first();
      // Recorded: ~27 ms (the last poll that had not seen the end). The next one, 3 ms or more
      // in, sleeps half its age toward the guard (27 * 0.9 - 0.15 ms): at least 1.5 ms while it
      // is under ~22 ms old.
      const second = expectDawnWait('test:named');
      busy(3);
      expect(await pollOnce()).toBeGreaterThan(1.2);
      second();
      // 'sleep-blind' ignores the kind: the age schedule again.
      installDawnPolling('sleep-blind');
      const blind = expectDawnWait('test:named');
      busy(3);
      expect(await pollOnce()).toBeLessThanOrEqual(1);
      blind();
    } finally {
      installDawnPolling('sleep');
    }
  });

  it('names each read-back by the work before it, so a repeated read-back has an expectation', async () => {
    const a = rand(device, [64, 64], { seed: 3 });
    const read = async (products: number) => {
      let c = matmul(a, a);
      for (let i = 1; i < products; i++) {
        const next = matmul(c, a, { alpha: 1 / 64 });
        c.dispose();
        c = next;
      }
      await device.read(c);
      c.dispose();
    };
    await read(3); // (with rand's dispatch before it: a kind of its own)
    await read(3);
    const before = dawnPollingStats();
    await read(3); // the same work: the same kind, expected from the last
    await read(2); // other work: a kind of its own, first seen
    const after = dawnPollingStats();
    expect(after.namedWaits - before.namedWaits).toBe(2);
    expect(after.expectedWaits - before.expectedWaits).toBe(1);
    a.dispose();
  });

  it('polls a long GPU wait far less often than the busy loop does', async () => {
    const a = rand(device, [512, 512], { seed: 1 });
    const b = rand(device, [512, 512], { seed: 2 });
    const job = async () => {
      let c = matmul(a, b);
      for (let i = 0; i < 5; i++) {
        const next = matmul(c, b, { alpha: 1 / 256 });
        c.dispose();
        c = next;
      }
      const values = await device.read(c);
      c.dispose();
      return values;
    };
    await job(); // compile outside the measured waits
    const pollsOf = async (mode: 'sleep' | 'sleep-blind' | 'spin') => {
      installDawnPolling(mode);
      const start = dawnPollingStats().polls;
      const began = performance.now();
      const values = await job();
      return { polls: dawnPollingStats().polls - start, values, ms: performance.now() - began };
    };
    const spin = await pollsOf('spin');
    const blind = await pollsOf('sleep-blind');
    const sleep = await pollsOf('sleep');
    installDawnPolling('sleep');
    // Same results every way. The blind schedule polls a few times per millisecond at most (20 us
    // at first, growing to 1 ms), the busy loop as fast as the thread can. The named wait (this
    // job's read-back is named alike each time, so it has an expectation) sleeps toward the
    // expected end and then polls at most every 0.25 ms: never more than 4 polls per millisecond
    // of wait, whatever the load (under load the busy loop itself polls less, so the ratio to it
    // is asserted for the blind schedule only).
    expect(Array.from(sleep.values)).toEqual(Array.from(spin.values));
    expect(Array.from(blind.values)).toEqual(Array.from(spin.values));
    console.log(
      `Dawn polls during one wait: busy loop ${spin.polls}, blind sleeps ${blind.polls}, named wait ${sleep.polls} in ${sleep.ms.toFixed(1)} ms`,
    );
    expect(spin.polls).toBeGreaterThan(0);
    expect(blind.polls * 3).toBeLessThan(spin.polls);
    expect(sleep.polls).toBeLessThanOrEqual(4 * sleep.ms + 8);
    a.dispose();
    b.dispose();
  });
});
