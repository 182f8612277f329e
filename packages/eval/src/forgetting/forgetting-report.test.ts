import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChoiceScorer } from '../mcq/choice-scorer.js';
import { evaluateMcq } from '../mcq/evaluate-mcq.js';
import { loadMcqTaskDirectory } from '../node.js';
import { characterTokenizer, FIXTURES } from '../testing/fakes.js';
import {
  type BenchmarkComparison,
  compareMcqResults,
  comparePerplexity,
  forgettingReport,
  formatForgettingReport,
} from './forgetting-report.js';

const tokenizer = characterTokenizer();

/** A scorer that answers right on the questions in `keys` (question + U+0001 + answer) and A on the others. */
function scorerRightOn(keys: Set<string>): ChoiceScorer {
  return {
    async scoreNextTokens(prompts) {
      return prompts.map((ids) => {
        const text = tokenizer.decode([...ids]);
        const question = text
          .slice(text.lastIndexOf('\n\n') + 1)
          .split('\nA.')[0]
          .trim();
        const logits = new Float32Array([1, 0, 0, 0]);
        const key = [...keys].find((entry) => entry.startsWith(`${question}\u0001`));
        if (key) {
          logits.fill(0);
          logits['ABCD'.indexOf(key.split('\u0001')[1])] = 1;
        }
        return logits;
      });
    },
  };
}

const comparison = (
  role: 'general' | 'domain',
  change: number,
  language?: 'en' | 'zh',
): BenchmarkComparison => ({
  name: `${role} set`,
  role,
  metric: 'accuracy',
  base: 0.5,
  tuned: 0.5 + change / 100,
  change,
  language,
});

describe('forgettingReport', () => {
  it('pairs base and tuned per question: accuracy change in points with a paired interval', async () => {
    const task = await loadMcqTaskDirectory(join(FIXTURES, 'tiny-task'));
    const all = task.subjects.flatMap((subject) => subject.questions);
    const key = (index: number) => `${all[index].question}\u0001${all[index].answer}`;
    // Base right on questions 0-5 (6 of 9), tuned right on 0-2 only (3 of 9).
    const base = await evaluateMcq(scorerRightOn(new Set([0, 1, 2, 3, 4, 5].map(key))), tokenizer, task, {
      nShot: 0,
    });
    const tuned = await evaluateMcq(scorerRightOn(new Set([0, 1, 2].map(key))), tokenizer, task, {
      nShot: 0,
    });
    expect(base.overall.correct).toBeGreaterThanOrEqual(6);
    const result = compareMcqResults('general', base, tuned);
    expect(result.change).toBeCloseTo((tuned.overall.accuracy - base.overall.accuracy) * 100, 10);
    expect(result.change).toBeLessThan(0);
    expect(result.count).toBe(9);
    expect(result.interval![0]).toBeLessThan(result.change);
    expect(result.interval![1]).toBeGreaterThan(result.change);
    // Differences d_i in {-1, 0}: mean m, sample variance over 8; interval m +- 1.96 sd / 3, x 100.
    const lost = base.questions.filter(
      (question, index) => question.correct && !tuned.questions[index].correct,
    ).length;
    const gainedBack = base.questions.filter(
      (question, index) => !question.correct && tuned.questions[index].correct,
    ).length;
    const mean = (gainedBack - lost) / 9;
    const variance =
      (lost * (-1 - mean) ** 2 + gainedBack * (1 - mean) ** 2 + (9 - lost - gainedBack) * mean ** 2) / 8;
    expect(result.interval![0]).toBeCloseTo((mean - 1.959964 * Math.sqrt(variance / 9)) * 100, 3);
    const shorter = await evaluateMcq(scorerRightOn(new Set()), tokenizer, task, { nShot: 0, limit: 1 });
    expect(() => compareMcqResults('general', base, shorter)).toThrow('scored on different questions');
  });

  it('says improved when the domain gains and general skill holds', () => {
    const report = forgettingReport([comparison('general', -0.5), comparison('domain', 12)]);
    expect(report.verdict).toBe('improved');
    expect(report.advice).toBeUndefined();
    expect(report.summary).toBe(
      'The tuned model is better on its domain (domain +12.0 points) and kept its general skill (general -0.5 points).',
    );
  });

  it('detects forgetting past the threshold and gives the mixing advice with the exact config lines', () => {
    const report = forgettingReport([comparison('general', -6.25), comparison('domain', 15)], {
      domainDataset: 'medical_qa',
    });
    expect(report.verdict).toBe('improved-with-forgetting');
    expect(report.generalChange).toBe(-6.25);
    expect(report.advice?.config).toBe(
      'dataset: medical_qa,alpaca_en_demo\nmix_strategy: interleave_under\ninterleave_probs: 0.9,0.1',
    );
    expect(report.advice?.text).toContain(
      'General skill fell 6.3 points, past the threshold of 2 points. Mix about 10%',
    );
    const markdown = formatForgettingReport(report);
    expect(markdown).toContain('| general set | general | accuracy | 50.00% | 43.75% | -6.3 pts |');
    expect(markdown).toContain('**Verdict: improved-with-forgetting.**');
    expect(markdown).toContain(
      '```yaml\ndataset: medical_qa,alpaca_en_demo\nmix_strategy: interleave_under\ninterleave_probs: 0.9,0.1\n```',
    );
  });

  it('suggests Chinese general data for Chinese benchmarks, and reads perplexity as lower-is-better', () => {
    const perplexityGain = comparePerplexity('domain', 'held-out answers', 20, 15);
    expect(perplexityGain.change).toBeCloseTo(25, 12); // (20 - 15) / 20
    expect(comparePerplexity('domain', 'x', 10, 20).change).toBeCloseTo(-50, 12); // doubled
    expect(comparePerplexity('domain', 'x', 1, 1e6).change).toBeGreaterThan(-100);
    const report = forgettingReport([comparison('general', -3, 'zh'), perplexityGain], { generalShare: 0.2 });
    expect(report.advice?.config).toBe(
      'dataset: my_data,alpaca_zh_demo\nmix_strategy: interleave_under\ninterleave_probs: 0.8,0.2',
    );
    expect(formatForgettingReport(report)).toContain(
      '| held-out answers | domain | perplexity | 20.000 | 15.000 | +25.0% |',
    );
  });

  it('judges a side by its accuracy sets when it also has perplexity ones', () => {
    const report = forgettingReport([
      comparison('general', 1),
      comparison('domain', 8),
      comparePerplexity('domain', 'texts', 10, 40),
    ]);
    expect(report.domainChange).toBe(8);
    expect(report.verdict).toBe('improved');
  });

  it('tells forgot, worse and no change apart, and needs both kinds of set', () => {
    expect(forgettingReport([comparison('general', -2), comparison('domain', 0.5)]).verdict).toBe('forgot');
    expect(forgettingReport([comparison('general', 0), comparison('domain', -4)]).verdict).toBe('worse');
    expect(forgettingReport([comparison('general', -1.9), comparison('domain', 0.9)]).verdict).toBe(
      'no-change',
    );
    expect(() => forgettingReport([comparison('domain', 3)])).toThrow('at least one general and one domain');
  });
});
