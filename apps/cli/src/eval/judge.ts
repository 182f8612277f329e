/**
 * `webtune eval judge`: a model judge over an OpenAI-compatible endpoint. Base and tuned answer
 * every prompt; the judge sees each pair twice, once in each order, to cancel position bias;
 * the tuned model's win rate comes with a confidence interval.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  type ComparisonSet,
  endpointJudge,
  formatWinRate,
  type JudgeResult,
  judgePairs,
  promptText,
} from '@webtune/eval';
import { numberOption, optional, parseCommandLine, required } from '../args.js';
import { bold, ProgressBar, printable, table, UsageError } from '../ui.js';
import {
  COMPARISON_OPTIONS,
  collectComparison,
  comparisonRequest,
  exportPreferences,
  pairJson,
  winnerName,
} from './comparison.js';

/**
 * The endpoint's base URL as OpenAI's clients take it (`http://host:port/v1`): a URL with no path
 * gets `/v1`; anything but http(s) is refused.
 */
export function judgeBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--judge-url must be an http(s) URL such as http://127.0.0.1:8000/v1, got "${text}"`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--judge-url must be an http(s) URL, got "${text}"`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1';
  return url.toString().replace(/\/+$/, '');
}

/** Fails fast (before answers are generated) when nothing listens at the endpoint. */
async function checkReachable(baseUrl: string): Promise<void> {
  try {
    const response = await fetch(`${baseUrl}/models`, { signal: AbortSignal.timeout(10_000) });
    await response.body?.cancel();
  } catch (error) {
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new UsageError(`the judge endpoint ${baseUrl} could not be reached (${reason})`, 1);
  }
}

export async function judgeCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    ...COMPARISON_OPTIONS,
    'judge-url': { type: 'string' },
    'judge-model': { type: 'string' },
    'judge-key': { type: 'string' },
    'judge-max-tokens': { type: 'string' },
    concurrency: { type: 'string' },
    confidence: { type: 'string' },
    save: { type: 'string' },
    json: { type: 'boolean' },
  });
  const baseUrl = judgeBaseUrl(required(values, 'judge-url'));
  const judgeModel = required(values, 'judge-model');
  const apiKey = optional(values, 'judge-key') ?? process.env.WEBTUNE_JUDGE_KEY;
  const maxTokens = numberOption(values, 'judge-max-tokens', { integer: true, min: 1 }) ?? 1024;
  const concurrency = numberOption(values, 'concurrency', { integer: true, min: 1 }) ?? 4;
  const confidence = numberOption(values, 'confidence', { min: 0.5, max: 0.999 }) ?? 0.95;
  const json = Boolean(values.json);
  const save = optional(values, 'save');
  const request = await comparisonRequest(values, 'judge_preferences');
  await checkReachable(baseUrl);

  const set = await collectComparison(request, json);
  const judge = endpointJudge({ baseUrl, model: judgeModel, apiKey: apiKey || undefined }, { maxTokens });
  const bar = json ? null : new ProgressBar('judging');
  let result: JudgeResult;
  try {
    result = await judgePairs(set, judge, {
      concurrency,
      confidence,
      onProgress: (progress) => bar?.update(progress.done, progress.total, 'pairs'),
    });
  } finally {
    bar?.done();
  }
  const report = judgeReport(set, result, { url: baseUrl, model: judgeModel });
  if (save) {
    await mkdir(dirname(save), { recursive: true });
    await writeFile(save, `${JSON.stringify(report, null, 2)}\n`);
  }
  const log = (line: string) => (json ? console.error(line) : console.log(line));
  if (json) console.log(JSON.stringify(report));
  else printJudgeResult(set, result, baseUrl, judgeModel);
  if (save) log(`saved the verdicts to ${save}`);
  if (result.invalid === set.pairs.length) {
    console.error(
      `warning: no reply of ${judgeModel} held a verdict ([[A]], [[B]] or [[C]]); is it an instruction-following model?`,
    );
  }
  if (request.exportDataset) {
    await exportPreferences(request.exportDataset, request.datasetName, set, result.outcomes, log);
  }
  return 0;
}

/** The JSON report: the tally, the judge's consistency and every pair with both verdicts. */
export function judgeReport(set: ComparisonSet, result: JudgeResult, judge: { url: string; model: string }) {
  const { summary } = result;
  const [base, tuned] = set.models;
  return {
    judge,
    models: set.models,
    pairs: set.pairs.length,
    requests: 2 * set.pairs.length,
    total: summary.total,
    wins: { [base]: summary.wins[0], [tuned]: summary.wins[1] },
    ties: summary.ties,
    invalid: result.invalid,
    inconsistent: result.inconsistent,
    winRate: summary.winRate,
    interval: summary.interval,
    confidence: summary.confidence,
    method: summary.method,
    firstPositionRate: result.firstPositionRate,
    items: result.pairs.map((pair) => ({
      ...pairJson(set, pair.id),
      // verdicts[0]: base's answer shown as A; verdicts[1]: tuned's answer shown as A.
      verdicts: { [`${base}First`]: pair.verdicts[0], [`${tuned}First`]: pair.verdicts[1] },
      winner: pair.verdicts.includes('invalid') ? null : winnerName(set, pair.winner),
      consistent: pair.consistent,
      replies: { [`${base}First`]: pair.replies[0], [`${tuned}First`]: pair.replies[1] },
    })),
  };
}

function printJudgeResult(set: ComparisonSet, result: JudgeResult, url: string, model: string): void {
  const [base, tuned] = set.models;
  console.log(
    `${bold('model judge')} ${model} at ${url}: ${set.pairs.length} pairs, each judged in both orders (${2 * set.pairs.length} requests)`,
  );
  const rows = [['#', 'prompt', `${base} shown first`, `${tuned} shown first`, 'winner']];
  for (const pair of result.pairs) {
    const prompt = printable(promptText(set.pairs[pair.id].prompt));
    rows.push([
      String(pair.id + 1),
      prompt.length > 40 ? `${prompt.slice(0, 39)}…` : prompt,
      pair.verdicts[0],
      pair.verdicts[1],
      pair.verdicts.includes('invalid')
        ? 'no verdict'
        : `${winnerName(set, pair.winner)}${pair.consistent ? '' : ' (orders disagree)'}`,
    ]);
  }
  console.log(table(rows));
  const { summary } = result;
  console.log('');
  console.log(
    `${bold(`${base} wins ${summary.wins[0]}`)}, ${bold(`${tuned} wins ${summary.wins[1]}`)}, ` +
      `${bold(`ties ${summary.ties}`)} (${result.inconsistent} of them orders that disagreed); ` +
      `${result.invalid} pair${result.invalid === 1 ? '' : 's'} without a readable verdict left out`,
  );
  if (summary.total === 0) {
    console.log('no pair has a verdict: no win rate');
    return;
  }
  console.log(formatWinRate(summary));
  const decisive = result.pairs
    .flatMap((pair) => pair.verdicts)
    .some((verdict) => verdict === 'A' || verdict === 'B');
  console.log(
    decisive
      ? `the judge chose the answer shown first in ${(result.firstPositionRate * 100).toFixed(0)}% of its decisive verdicts (50% = no position bias)`
      : 'the judge called every readable pair a tie',
  );
}
