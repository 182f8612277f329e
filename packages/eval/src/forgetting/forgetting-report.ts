/**
 * "Did the model get smarter, and did it forget anything?" Base and tuned models side by side on
 * general benchmarks and on the domain set: the domain gain, the general change, a verdict, and
 * when general skill drops past a threshold, the advice to mix ~10% general data into training
 * with the config lines that do it.
 */
import type { CausalLM } from '@webtune/nn';
import { perplexity } from '@webtune/nn';
import { noGrad } from '@webtune/tensors';
import { EvaluationError } from '../errors.js';
import { evaluateMcq, type McqOptions } from '../mcq/evaluate-mcq.js';
import type { McqResult } from '../mcq/mcq-result.js';
import type { McqLanguage, McqTask } from '../mcq/task.js';
import { type ModelVariant, withVariant } from '../pairwise/comparison.js';
import { normalQuantile } from '../pairwise/win-rate.js';
import type { EvalTokenizer } from '../prompt-encoding.js';

/** Base and tuned on one benchmark. */
export interface BenchmarkComparison {
  name: string;
  /** `general`: skills the model had before (MMLU, C-Eval...); `domain`: what it was tuned for. */
  role: 'general' | 'domain';
  /** `accuracy` (0-1, higher is better) or `perplexity` (lower is better). */
  metric: 'accuracy' | 'perplexity';
  base: number;
  tuned: number;
  /**
   * Improvement of tuned over base in the metric's better direction: accuracy points (x 100) or,
   * for perplexity, the percent by which it fell. Negative: worse.
   */
  change: number;
  /** 95% interval of `change` from paired per-question results, when known. */
  interval?: [number, number];
  /** Questions (or tokens) behind the numbers. */
  count?: number;
  language?: McqLanguage;
}

/** Base and tuned accuracy on one task; the interval pairs each question's two outcomes. */
export function compareMcqResults(
  role: BenchmarkComparison['role'],
  base: McqResult,
  tuned: McqResult,
  name = base.task,
): BenchmarkComparison {
  const key = (question: McqResult['questions'][number]) => `${question.subject}\u0001${question.index}`;
  const tunedByKey = new Map(tuned.questions.map((question) => [key(question), question.correct]));
  const differences: number[] = [];
  for (const question of base.questions) {
    const other = tunedByKey.get(key(question));
    if (other !== undefined) differences.push(Number(other) - Number(question.correct));
  }
  if (differences.length !== base.questions.length || differences.length !== tuned.questions.length) {
    throw new EvaluationError(
      `${name}: base and tuned were scored on different questions; run both with the same task and options`,
    );
  }
  const n = differences.length;
  const mean = n > 0 ? differences.reduce((total, value) => total + value, 0) / n : 0;
  const variance = n > 1 ? differences.reduce((total, value) => total + (value - mean) ** 2, 0) / (n - 1) : 0;
  const half = normalQuantile(0.95) * Math.sqrt(variance / Math.max(1, n));
  return {
    name,
    role,
    metric: 'accuracy',
    base: base.overall.accuracy,
    tuned: tuned.overall.accuracy,
    change: (tuned.overall.accuracy - base.overall.accuracy) * 100,
    interval: [(mean - half) * 100, (mean + half) * 100],
    count: n,
    language: base.language,
  };
}

/**
 * Base and tuned perplexity on one text set (lower is better). The change is
 * (base - tuned) / max(base, tuned) x 100: +50 when tuned halves the perplexity, -50 when it
 * doubles it; bounded by +-100 whatever the blow-up.
 */
export function comparePerplexity(
  role: BenchmarkComparison['role'],
  name: string,
  base: number,
  tuned: number,
  count?: number,
): BenchmarkComparison {
  return {
    name,
    role,
    metric: 'perplexity',
    base,
    tuned,
    change: ((base - tuned) / Math.max(base, tuned)) * 100,
    count,
  };
}

export type ForgettingVerdict = 'improved' | 'improved-with-forgetting' | 'forgot' | 'worse' | 'no-change';

/** Options of `forgettingReport`. */
export interface ForgettingOptions {
  /** General change (points or percent) at or below minus this counts as forgetting. Default 2. */
  forgettingThreshold?: number;
  /** Domain change at or above this counts as a gain. Default 1. */
  gainThreshold?: number;
  /** Name of the domain dataset in the training config. Default `my_data`. */
  domainDataset?: string;
  /** General dataset to mix in. Default `alpaca_en_demo`, or `alpaca_zh_demo` for Chinese benchmarks. */
  generalDataset?: string;
  /** Share of general data in the mix. Default 0.1. */
  generalShare?: number;
}

/** The report. */
export interface ForgettingReport {
  comparisons: BenchmarkComparison[];
  /** Mean change over the domain's accuracy comparisons (its perplexity ones when it has none). */
  domainChange: number;
  /** The same over the general comparisons. */
  generalChange: number;
  verdict: ForgettingVerdict;
  /** One sentence for people. */
  summary: string;
  /** Present when general skill dropped past the threshold. */
  advice?: { text: string; config: string };
  thresholds: { forgetting: number; gain: number };
}

/** Weighs the comparisons into a verdict and, on forgetting, the advice and its config lines. */
export function forgettingReport(
  comparisons: readonly BenchmarkComparison[],
  options: ForgettingOptions = {},
): ForgettingReport {
  const general = comparisons.filter((comparison) => comparison.role === 'general');
  const domain = comparisons.filter((comparison) => comparison.role === 'domain');
  if (general.length === 0 || domain.length === 0) {
    throw new EvaluationError('a forgetting report needs at least one general and one domain comparison');
  }
  const forgettingThreshold = options.forgettingThreshold ?? 2;
  const gainThreshold = options.gainThreshold ?? 1;
  // Accuracy points and perplexity percents do not average together: a side's change is the mean
  // over its accuracy comparisons, or over its perplexity ones when it has no accuracy.
  const decisive = (items: BenchmarkComparison[]) => {
    const accuracy = items.filter((item) => item.metric === 'accuracy');
    return accuracy.length > 0 ? accuracy : items;
  };
  const mean = (items: BenchmarkComparison[]) =>
    items.reduce((total, item) => total + item.change, 0) / items.length;
  const domainBasis = decisive(domain);
  const generalBasis = decisive(general);
  const domainChange = mean(domainBasis);
  const generalChange = mean(generalBasis);
  const gained = domainChange >= gainThreshold;
  const forgot = generalChange <= -forgettingThreshold;
  const verdict: ForgettingVerdict =
    gained && forgot
      ? 'improved-with-forgetting'
      : gained
        ? 'improved'
        : forgot
          ? 'forgot'
          : domainChange <= -gainThreshold
            ? 'worse'
            : 'no-change';
  const unit = (items: BenchmarkComparison[]) =>
    items.every((item) => item.metric === 'accuracy') ? ' points' : '%';
  const signed = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
  const domainText = `domain ${signed(domainChange)}${unit(domainBasis)}`;
  const generalText = `general ${signed(generalChange)}${unit(generalBasis)}`;
  const summary = {
    improved: `The tuned model is better on its domain (${domainText}) and kept its general skill (${generalText}).`,
    'improved-with-forgetting': `The tuned model is better on its domain (${domainText}) but lost general skill (${generalText}): catastrophic forgetting.`,
    forgot: `The tuned model gained nothing measurable on its domain (${domainText}) and lost general skill (${generalText}).`,
    worse: `The tuned model is worse on its domain (${domainText}; ${generalText}): check the data, the template and the learning rate.`,
    'no-change': `No measurable change (${domainText}, ${generalText}).`,
  }[verdict];
  let advice: ForgettingReport['advice'];
  if (forgot) {
    const share = options.generalShare ?? 0.1;
    const chinese = general.some((item) => item.language === 'zh');
    const generalDataset = options.generalDataset ?? (chinese ? 'alpaca_zh_demo' : 'alpaca_en_demo');
    const domainDataset = options.domainDataset ?? 'my_data';
    const domainShare = Number((1 - share).toFixed(4));
    advice = {
      text:
        `General skill fell ${Math.abs(generalChange).toFixed(1)}${unit(generalBasis)}, past the threshold of ${forgettingThreshold}${unit(generalBasis)}. ` +
        `Mix about ${Math.round(share * 100)}% general instruction data into training (more if the drop persists, ` +
        'or lower the learning rate / train fewer epochs); in the training config:',
      config: `dataset: ${domainDataset},${generalDataset}\nmix_strategy: interleave_under\ninterleave_probs: ${domainShare},${share}`,
    };
  }
  return {
    comparisons: [...comparisons],
    domainChange,
    generalChange,
    verdict,
    summary,
    ...(advice ? { advice } : {}),
    thresholds: { forgetting: forgettingThreshold, gain: gainThreshold },
  };
}

/** The report as Markdown: a table of base vs tuned, the verdict, and the advice with its config block. */
export function formatForgettingReport(report: ForgettingReport): string {
  const value = (comparison: BenchmarkComparison, number: number) =>
    comparison.metric === 'accuracy' ? `${(number * 100).toFixed(2)}%` : number.toFixed(3);
  const change = (comparison: BenchmarkComparison) => {
    const unit = comparison.metric === 'accuracy' ? ' pts' : '%';
    const interval = comparison.interval
      ? ` (95% CI ${comparison.interval[0].toFixed(1)} to ${comparison.interval[1].toFixed(1)})`
      : '';
    return `${comparison.change >= 0 ? '+' : ''}${comparison.change.toFixed(1)}${unit}${interval}`;
  };
  const lines = [
    '# Forgetting report',
    '',
    '| set | role | metric | base | tuned | change |',
    '| --- | --- | --- | ---: | ---: | ---: |',
    ...report.comparisons.map(
      (comparison) =>
        `| ${comparison.name} | ${comparison.role} | ${comparison.metric} | ${value(comparison, comparison.base)} | ${value(comparison, comparison.tuned)} | ${change(comparison)} |`,
    ),
    '',
    `**Verdict: ${report.verdict}.** ${report.summary}`,
  ];
  if (report.advice) lines.push('', report.advice.text, '', '```yaml', report.advice.config, '```');
  return `${lines.join('\n')}\n`;
}

/** What `evaluateForgetting` runs. */
export interface ForgettingRun extends ForgettingOptions {
  /** General benchmarks (MMLU, C-Eval, CMMLU subsets...). */
  general: readonly McqTask[];
  /** Domain benchmarks as multiple choice... */
  domainTasks?: readonly McqTask[];
  /** ...and/or domain texts scored by perplexity (e.g. held-out answers of the training set). */
  domainTexts?: { name: string; texts: readonly string[] };
  /** Multiple-choice settings, the same for every run. */
  mcq?: McqOptions;
}

/**
 * Runs base and tuned (`adapterVariants(peft)` gives both from one PeftModel) on every set and
 * builds the report. Returns the raw results too.
 */
export async function evaluateForgetting(
  variants: readonly [ModelVariant, ModelVariant],
  tokenizer: EvalTokenizer,
  run: ForgettingRun,
): Promise<{
  report: ForgettingReport;
  results: { base: McqResult; tuned: McqResult; role: 'general' | 'domain' }[];
}> {
  const comparisons: BenchmarkComparison[] = [];
  const results: { base: McqResult; tuned: McqResult; role: 'general' | 'domain' }[] = [];
  const sets: [McqTask, 'general' | 'domain'][] = [
    ...run.general.map((task) => [task, 'general'] as [McqTask, 'general']),
    ...(run.domainTasks ?? []).map((task) => [task, 'domain'] as [McqTask, 'domain']),
  ];
  for (const [task, role] of sets) {
    const [base, tuned] = [
      await withVariant(variants[0], () => evaluateMcq(variants[0].model, tokenizer, task, run.mcq)),
      await withVariant(variants[1], () => evaluateMcq(variants[1].model, tokenizer, task, run.mcq)),
    ];
    results.push({ base, tuned, role });
    comparisons.push(compareMcqResults(role, base, tuned));
  }
  if (run.domainTexts) {
    const texts = run.domainTexts.texts;
    if (texts.length === 0) throw new EvaluationError(`domain texts "${run.domainTexts.name}" are empty`);
    const meanPerplexity = (variant: ModelVariant) =>
      withVariant(variant, () => corpusPerplexity(variant.model, tokenizer, texts));
    const base = await meanPerplexity(variants[0]);
    const tuned = await meanPerplexity(variants[1]);
    comparisons.push(
      comparePerplexity('domain', run.domainTexts.name, base.perplexity, tuned.perplexity, base.tokens),
    );
  }
  return { report: forgettingReport(comparisons, run), results };
}

/** Perplexity over several texts: exp of the token-weighted mean loss. */
async function corpusPerplexity(
  model: CausalLM,
  tokenizer: EvalTokenizer,
  texts: readonly string[],
): Promise<{ perplexity: number; tokens: number }> {
  let loss = 0;
  let tokens = 0;
  for (const text of texts) {
    const result = await noGrad(() => perplexity(model, tokenizer, text));
    loss += result.meanLoss * result.tokens;
    tokens += result.tokens;
  }
  return { perplexity: Math.exp(loss / tokens), tokens };
}
