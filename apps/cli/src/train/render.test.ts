import type { TrainerEvent } from '@webtune/train';
import { describe, expect, it } from 'vitest';
import { sparkline, stripAnsi } from '../ui.js';
import { createDashboard } from './dashboard.js';
import { lossCurveSvg, niceTicks } from './loss-svg.js';

/** A stream that records what is written. */
function recorder(isTTY: boolean) {
  const chunks: string[] = [];
  return {
    chunks,
    stream: {
      isTTY,
      columns: 100,
      write: (text: string) => chunks.push(text) > 0,
    } as unknown as NodeJS.WriteStream,
  };
}

const step = (n: number, loss: number): TrainerEvent => ({
  type: 'step-end',
  step: n,
  totalSteps: 10,
  epoch: n / 5,
  loss,
  learningRate: 1e-3,
  gradNorm: 0.5,
  tokens: 100,
  tokensPerSecond: 1000,
  stepMs: 100,
  elapsedMs: n * 100,
  remainingMs: (10 - n) * 100,
  memory: { liveBytes: 2048, peakBytes: 4096 },
  metrics: {},
});

describe('loss curve SVG', () => {
  it('draws the train and eval losses on labelled axes', () => {
    const svg = lossCurveSvg({
      train: Array.from({ length: 20 }, (_, i) => ({ step: i + 1, loss: 3 - i * 0.1 })),
      eval: [
        { step: 10, loss: 2.5 },
        { step: 20, loss: 2.2 },
      ],
      title: 'a & b',
    });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a &amp; b');
    const train = svg.match(/class="train-loss" d="([^"]+)"/)![1];
    expect(train.split(' ')).toHaveLength(20);
    expect(svg).toContain('class="train-loss-smoothed"');
    expect(svg.match(/<circle /g)).toHaveLength(2);
    // Lower loss is drawn higher up: y grows as the loss falls.
    const ys = train.split(' ').map((point) => Number(point.slice(1).split(',')[1]));
    expect(ys[19]).toBeGreaterThan(ys[0]);
  });

  it('says so when no step was logged', () => {
    expect(lossCurveSvg({ train: [], eval: [] })).toContain('no steps logged');
  });

  it('picks round ticks', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 75)).toEqual([0, 20, 40, 60]);
  });
});

describe('dashboard', () => {
  it('prints plain lines every logging step off a terminal', () => {
    const { chunks, stream } = recorder(false);
    const dashboard = createDashboard({ live: false, loggingSteps: 5, stream });
    dashboard.handle({
      type: 'train-start',
      totalSteps: 10,
      stepsPerEpoch: 5,
      trainRows: 40,
      validationRows: 0,
      trainableParameters: 1234,
      resumedFrom: null,
      firstStep: 1,
    });
    for (let n = 1; n <= 10; n++) dashboard.handle(step(n, 3 - n * 0.1));
    dashboard.handle({
      type: 'diagnostic-raised',
      diagnostic: {
        kind: 'loss-spike',
        step: 7,
        severity: 'warning',
        message: 'The loss jumped.',
        advice: 'Lower the learning rate.',
      },
    });
    dashboard.close();
    const text = chunks.join('');
    expect(text).not.toContain('\u001b[');
    const lines = text.trim().split('\n');
    expect(lines[0]).toMatch(
      /training: 10 steps \(5 per epoch\), 40 train rows, 0 validation rows, 1,234 trainable parameters/,
    );
    expect(lines.filter((l) => l.startsWith('step '))).toEqual([
      expect.stringMatching(
        /^step 1\/10 \(10%\) loss 2.900 lr 0.00100 grad_norm 0.500 1000 tokens\/s memory 2.0 KiB elapsed 0.1s ETA 0.9s/,
      ),
      expect.stringMatching(/^step 5\/10 \(50%\) loss 2.500/),
      expect.stringMatching(/^step 10\/10 \(100%\) loss 2.000/),
    ]);
    expect(lines.at(-1)).toBe('warning at step 7 (loss-spike): The loss jumped. Lower the learning rate.');
  });

  it('redraws a block in place on a terminal, with a progress bar, sparkline, memory and ETA', () => {
    const { chunks, stream } = recorder(true);
    const dashboard = createDashboard({ live: true, loggingSteps: 5, stream });
    dashboard.handle({
      type: 'train-start',
      totalSteps: 10,
      stepsPerEpoch: 5,
      trainRows: 40,
      validationRows: 0,
      trainableParameters: 10,
      resumedFrom: null,
      firstStep: 1,
    });
    for (let n = 1; n <= 10; n++) dashboard.handle(step(n, 3 - n * 0.1));
    dashboard.close();
    const last = stripAnsi(chunks.at(-1)!);
    expect(chunks.some((c) => c.includes(`${String.fromCharCode(27)}[3A`))).toBe(true);
    expect(last).toMatch(/step 10\/10 \[█+\] 100%/);
    expect(last).toContain(sparkline([2.9, 2.8, 2.7, 2.6, 2.5, 2.4, 2.3, 2.2, 2.1, 2.0], 40));
    expect(last).toMatch(/memory 2.0 KiB \(peak 4.0 KiB\)/);
    expect(last).toMatch(/ETA 0.0s/);
  });
});
