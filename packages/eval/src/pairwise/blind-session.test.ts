import { describe, expect, it } from 'vitest';
import { EvaluationError } from '../errors.js';
import { BlindSession } from './blind-session.js';
import type { ComparisonSet } from './comparison.js';

const set: ComparisonSet = {
  models: ['base', 'tuned'],
  pairs: Array.from({ length: 20 }, (_, id) => ({
    id,
    prompt: `question ${id}`,
    answers: [`base answer ${id}`, `tuned answer ${id}`],
  })),
};

describe('BlindSession', () => {
  it('shuffles the order and the sides, and shows no model names', () => {
    const session = BlindSession.create(set, { seed: 3 });
    const items = Array.from({ length: session.length }, (_, index) => session.item(index));
    const prompts = items.map((item) => item.prompt);
    expect([...prompts].sort()).toEqual(set.pairs.map((pair) => pair.prompt).sort());
    expect(prompts).not.toEqual(set.pairs.map((pair) => pair.prompt));
    const tunedFirst = items.filter((item) => item.a.startsWith('tuned')).length;
    expect(tunedFirst).toBeGreaterThan(2);
    expect(tunedFirst).toBeLessThan(18);
    expect(Object.keys(items[0]).sort()).toEqual(['a', 'b', 'index', 'prompt']);
    expect(BlindSession.create(set, { seed: 3 }).toJSON()).toEqual(session.toJSON());
  });

  it('unblinds votes to the models whatever side they were on', () => {
    const session = BlindSession.create(set, { seed: 11 });
    // A person who always prefers the tuned answer, except a tie on items 0 and 1; item 2 skipped.
    for (let index = 3; index < session.length; index++) {
      const item = session.item(index);
      session.vote(index, item.a.startsWith('tuned') ? 'A' : 'B');
    }
    session.vote(0, 'tie');
    session.vote(1, 'B');
    session.vote(1, 'tie'); // a changed vote replaces the first
    expect(session.next()?.index).toBe(2);
    expect(session.complete).toBe(false);
    const result = session.unblind();
    expect(result.skipped).toBe(1);
    expect(result.summary).toMatchObject({ total: 19, wins: [0, 17], ties: 2 });
    expect(result.summary.winRate).toBeCloseTo(18 / 19, 12);
    for (const item of result.items.filter((entry) => entry.vote !== 'tie')) {
      expect(item.winner).toBe(1);
      expect(item.shownAs[item.vote as 'A' | 'B']).toBe('tuned');
    }
    expect(result.outcomes.map((outcome) => outcome.id).sort((a, b) => a - b)).toEqual(
      set.pairs.map((pair) => pair.id).filter((id) => id !== session.toJSON().order[2]),
    );
  });

  it('saves and restores a session, and rejects bad votes, items and states', () => {
    const session = BlindSession.create(set, { seed: 5 });
    session.vote(4, 'A');
    const restored = BlindSession.restore(set, JSON.parse(JSON.stringify(session.toJSON())));
    expect(restored.item(4)).toEqual(session.item(4));
    expect(restored.voted).toBe(1);
    expect(() => session.vote(20, 'A')).toThrow(EvaluationError);
    expect(() => session.vote(0, 'left' as never)).toThrow('a vote is A, B or tie');
    expect(() => BlindSession.restore({ ...set, pairs: set.pairs.slice(1) }, session.toJSON())).toThrow(
      'does not fit this comparison set of 19 pairs',
    );
    expect(() => BlindSession.create({ models: ['a', 'b'], pairs: [] })).toThrow('at least one pair');
  });
});
