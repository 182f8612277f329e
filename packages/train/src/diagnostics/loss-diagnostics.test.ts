import { describe, expect, it } from 'vitest';
import { LossDiagnostics } from './loss-diagnostics.js';

const feed = (diagnostics: LossDiagnostics, losses: number[], from = 1) =>
  losses.flatMap((loss, i) => diagnostics.observeTrain(from + i, loss));

describe('loss diagnostics', () => {
  it('a spike: a loss at least twice the recent median, reported once per window with advice', () => {
    const diagnostics = new LossDiagnostics({ totalSteps: 100 });
    const found = feed(diagnostics, [2, 1.9, 1.8, 1.85, 1.7, 1.75, 4.2, 4.5, 1.7]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ kind: 'loss-spike', step: 7, severity: 'warning' });
    expect(found[0].message).toContain('4.200');
    expect(found[0].advice).toMatch(/learning rate is likely too high/);
    // Ordinary noise is not a spike.
    expect(feed(new LossDiagnostics({ totalSteps: 100 }), [2, 2.2, 1.9, 2.3, 2.1, 2.4, 2.0])).toEqual([]);
  });

  it('a collapse toward zero early in the run, but not late', () => {
    const early = feed(new LossDiagnostics({ totalSteps: 100 }), [3, 1, 0.2, 0.04]);
    expect(early.map((d) => d.kind)).toEqual(['loss-collapse']);
    expect(early[0].advice).toMatch(/too little/);
    const late = new LossDiagnostics({ totalSteps: 100 });
    expect(feed(late, [0.04], 80)).toEqual([]);
  });

  it('a plateau: two windows with less than 1% improvement', () => {
    const diagnostics = new LossDiagnostics({ totalSteps: 100, window: 5 });
    const falling = feed(diagnostics, [3, 2.8, 2.6, 2.4, 2.2, 2.0, 1.9, 1.8, 1.7, 1.6]);
    expect(falling).toEqual([]);
    const flat = feed(diagnostics, [1.6, 1.61, 1.59, 1.6, 1.6, 1.6, 1.61, 1.59, 1.6, 1.6], 11);
    expect(flat.map((d) => d.kind)).toEqual(['loss-plateau']);
    expect(flat[0].advice).toMatch(/higher learning rate/);
  });

  it('overfitting: eval loss up twice in a row while train loss falls', () => {
    const diagnostics = new LossDiagnostics({ totalSteps: 100, window: 5 });
    feed(diagnostics, [3, 2.5, 2.2, 2, 1.8]);
    expect(diagnostics.observeEval(5, 2.0)).toEqual([]);
    feed(diagnostics, [1.5, 1.3, 1.1, 0.9, 0.8], 6);
    expect(diagnostics.observeEval(10, 2.1)).toEqual([]);
    feed(diagnostics, [0.6, 0.5, 0.4, 0.35, 0.3], 11);
    const found = diagnostics.observeEval(15, 2.4);
    expect(found.map((d) => d.kind)).toEqual(['overfitting']);
    expect(found[0].advice).toMatch(/fewer epochs/);
    expect(found[0].advice).toContain('step 5');
  });

  it('names the step and tensor of a non-finite value; the state survives a snapshot', () => {
    const diagnostics = new LossDiagnostics({ totalSteps: 10 });
    const error = diagnostics.nonFinite(
      4,
      'model.layers.0.mlp.up_proj.lora_A.default.weight.grad',
      Number.NaN,
    );
    expect(error).toMatchObject({ kind: 'non-finite', severity: 'error', step: 4 });
    expect(error.message).toContain(
      'Step 4 produced NaN in model.layers.0.mlp.up_proj.lora_A.default.weight.grad',
    );
    feed(diagnostics, [2, 2, 2, 2, 2]);
    const copy = new LossDiagnostics({ totalSteps: 10 });
    copy.restore(diagnostics.snapshot());
    expect(copy.observeTrain(6, 5)).toEqual(diagnostics.observeTrain(6, 5));
  });
});

describe('the non-finite stop', () => {
  it('suggests only a checkpoint that exists', () => {
    const diagnostics = new LossDiagnostics({ totalSteps: 10 });
    expect(diagnostics.nonFinite(3, 'loss', Number.NaN, 'checkpoint-2').advice).toContain(
      'Resume from checkpoint-2 (resume_from_checkpoint: checkpoint-2)',
    );
    const none = diagnostics.nonFinite(1, 'loss', Number.NaN, null).advice;
    expect(none).toMatch(/^No checkpoint was saved before it: start over/);
    expect(none).not.toMatch(/[Rr]esume/);
  });
});
