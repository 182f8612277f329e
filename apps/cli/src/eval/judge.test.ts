// `webtune eval judge` end to end on stories260K against real HTTP servers speaking the OpenAI
// chat-completions protocol: a scripted judge whose verdicts are known, and `webtune serve`.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadExamplesFromDirectory } from '@webtune/data/node';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { adapterFolder } from '../testing/adapter-folder.js';
import { comparisonArgs, errorLines, startCli, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const KEY = 'judge-key-42';

/** One request the scripted judge received. */
interface JudgeRequest {
  authorization?: string;
  model: string;
  maxTokens: number;
  system: string;
  request: string;
  a: string;
  b: string;
}

interface JudgeItem {
  id: number;
  prompt: unknown;
  answers: { base: string; tuned: string };
  verdicts: { baseFirst: string; tunedFirst: string };
  winner: 'base' | 'tuned' | 'tie' | null;
  consistent: boolean;
  replies: { baseFirst: string; tunedFirst: string };
}

/**
 * A judge that prefers the answer that sorts last (whatever side it is on, so both orders agree),
 * calls equal answers a tie, and gives no verdict on requests that mention "unjudgeable".
 */
function scriptedJudge(requests: JudgeRequest[]): Server {
  return createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      if (request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ object: 'list', data: [{ id: 'scripted' }] }));
        return;
      }
      const parsed = JSON.parse(body);
      const user: string = parsed.messages[1].content;
      const part = (pattern: RegExp) => user.match(pattern)?.[1] ?? '';
      const seen: JudgeRequest = {
        authorization: request.headers.authorization,
        model: parsed.model,
        maxTokens: parsed.max_tokens,
        system: parsed.messages[0].content,
        request: part(/^\[User request\]\n([\s\S]*?)\n\n\[Answer A\]/),
        a: part(/\[Answer A\]\n([\s\S]*?)\n\[End of Answer A\]/),
        b: part(/\[Answer B\]\n([\s\S]*?)\n\[End of Answer B\]/),
      };
      requests.push(seen);
      const verdict = seen.request.includes('unjudgeable')
        ? 'Both answers are interesting.'
        : `Reasons.\n${seen.a > seen.b ? '[[A]]' : seen.b > seen.a ? '[[B]]' : '[[C]]'}`;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: verdict }, finish_reason: 'stop' }],
        }),
      );
    });
  });
}

describe.skipIf(!requireFixtures(STORIES))('webtune eval judge on stories260K', () => {
  const model = fixturePath(STORIES);
  const work = adapterFolder(model, 'webtune-cli-judge-');
  let prompts: string;

  beforeAll(() => {
    prompts = join(work.folder, 'prompts.jsonl');
    writeFileSync(
      prompts,
      [
        JSON.stringify('Once upon a time'),
        JSON.stringify({ instruction: 'Tell me about', input: 'a dog' }),
        JSON.stringify({ messages: [{ role: 'user', content: 'What is the sun?' }] }),
        JSON.stringify({ prompt: 'An unjudgeable story' }),
      ].join('\n'),
    );
  });

  it('asks a scripted judge both orders of every pair and tallies its verdicts', async () => {
    const requests: JudgeRequest[] = [];
    const server = scriptedJudge(requests);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const data = join(work.folder, 'judged');
    try {
      const result = await webtune([
        ...comparisonArgs('judge', model, work.adapter, prompts),
        '--max-new-tokens',
        '8',
        '--judge-url',
        url,
        '--judge-model',
        'scripted',
        '--judge-key',
        KEY,
        '--judge-max-tokens',
        '64',
        '--json',
        '--export-dataset',
        data,
      ]);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      const items: JudgeItem[] = report.items;
      expect(report).toMatchObject({
        judge: { url, model: 'scripted' },
        models: ['base', 'tuned'],
        pairs: 4,
      });
      expect(items.map((item) => item.prompt)).toEqual([
        'Once upon a time',
        'Tell me about\na dog',
        { turns: [{ role: 'user', content: 'What is the sun?' }] },
        'An unjudgeable story',
      ]);
      // Two requests a pair: base's answer as A, then tuned's answer as A; key, model, limit sent.
      expect(requests).toHaveLength(8);
      for (const seen of requests) {
        expect(seen).toMatchObject({ authorization: `Bearer ${KEY}`, model: 'scripted', maxTokens: 64 });
        expect(seen.system).toMatch(/\[\[A\]\] if Answer A is better/);
      }
      const requestTexts = [
        'Once upon a time',
        'Tell me about\na dog',
        'What is the sun?',
        'An unjudgeable story',
      ];
      for (const [index, item] of items.entries()) {
        const asked = requests.filter((seen) => seen.request === requestTexts[index]);
        const { base, tuned } = item.answers;
        expect(asked.map((seen) => [seen.a, seen.b]).sort()).toEqual(
          [
            [base, tuned],
            [tuned, base],
          ].sort(),
        );
        if (index === 3) {
          expect(item.verdicts).toEqual({ baseFirst: 'invalid', tunedFirst: 'invalid' });
          expect(item.winner).toBeNull();
          continue;
        }
        const expected = base > tuned ? 'base' : tuned > base ? 'tuned' : 'tie';
        expect(item.winner).toBe(expected);
        expect(item.consistent).toBe(true);
        expect(item.verdicts).toEqual(
          expected === 'tie'
            ? { baseFirst: 'tie', tunedFirst: 'tie' }
            : expected === 'base'
              ? { baseFirst: 'A', tunedFirst: 'B' }
              : { baseFirst: 'B', tunedFirst: 'A' },
        );
        expect(item.replies.baseFirst).toMatch(/^Reasons\.\n\[\[[ABC]\]\]$/);
      }
      // The counts add up, the win rate counts ties half, its interval holds it.
      const count = (winner: string) => items.filter((item) => item.winner === winner).length;
      expect(report.invalid).toBe(1);
      expect(report.total).toBe(3);
      expect(report.wins).toEqual({ base: count('base'), tuned: count('tuned') });
      expect(report.ties).toBe(count('tie'));
      expect(report.wins.base + report.wins.tuned + report.ties).toBe(report.total);
      expect(report.inconsistent).toBe(0);
      expect(report.winRate).toBeCloseTo((count('tuned') + count('tie') / 2) / 3, 10);
      expect(report.interval[0]).toBeLessThanOrEqual(report.winRate);
      expect(report.interval[1]).toBeGreaterThanOrEqual(report.winRate);
      expect(report.confidence).toBe(0.95);
      // The adapter changes the answers, so the judge decides some pairs; each decided pair has one
      // A and one B verdict: no position bias.
      const decisive = count('base') + count('tuned');
      expect(decisive).toBeGreaterThan(0);
      expect(report.firstPositionRate).toBe(0.5);

      // The decided pairs are a preference dataset for stage dpo: the judge's choice is chosen.
      expect(errorLines(result.stderr)).toEqual([
        expect.stringMatching(
          new RegExp(`^exported ${decisive} preference pairs? to .* as dataset "judge_preferences"`),
        ),
      ]);
      const loaded = await loadExamplesFromDirectory({
        datasetDir: data,
        datasets: ['judge_preferences'],
        stage: 'dpo',
      });
      expect(loaded.report.rejected).toEqual([]);
      const winners = items.filter((item) => item.winner === 'base' || item.winner === 'tuned');
      expect(loaded.train).toHaveLength(winners.length);
      for (const [index, example] of loaded.train.entries()) {
        if (example.kind !== 'preference')
          throw new Error(`expected a preference example, got ${example.kind}`);
        const item = winners[index];
        const loser = item.winner === 'base' ? 'tuned' : 'base';
        expect(example.chosen.content).toBe(item.answers[item.winner as 'base']);
        expect(example.rejected.content).toBe(item.answers[loser]);
      }
    } finally {
      server.close();
    }
  });

  it('judges with `webtune serve` as the judge: both orders asked, the counts add up', async () => {
    const serve = startCli(['serve', '--model', model, '--port', '0', '--model-name', 'judge']);
    try {
      const match = await serve.waitFor(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
      const save = join(work.folder, 'verdicts.json');
      const result = await webtune([
        ...comparisonArgs('judge', model, work.adapter, prompts),
        '--max-samples',
        '3',
        '--max-new-tokens',
        '8',
        '--judge-url',
        `http://127.0.0.1:${match[1]}`,
        '--judge-model',
        'judge',
        '--judge-max-tokens',
        '8',
        '--save',
        save,
      ]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(
        /judge at http:\/\/127\.0\.0\.1:\d+\/v1: 3 pairs, each judged in both orders \(6 requests\)/,
      );
      expect(result.stdout).toMatch(/base wins \d+, tuned wins \d+, ties \d+/);
      const report = JSON.parse(readFileSync(save, 'utf8'));
      expect(report.items).toHaveLength(3);
      for (const item of report.items) {
        expect(Object.keys(item.verdicts)).toEqual(['baseFirst', 'tunedFirst']);
        for (const verdict of Object.values(item.verdicts))
          expect(['A', 'B', 'tie', 'invalid']).toContain(verdict);
        expect(typeof item.replies.baseFirst).toBe('string');
      }
      expect(report.total + report.invalid).toBe(3);
      expect(report.wins.base + report.wins.tuned + report.ties).toBe(report.total);
      // The server answered six chat completions: every pair in both orders.
      const posts = serve.stderr().match(/POST \/v1\/chat\/completions 200/g) ?? [];
      expect(posts).toHaveLength(6);
    } finally {
      serve.child.kill('SIGINT');
      await serve.exited;
    }
  });

  it('fails in one line on a bad URL, an unreachable judge and a missing --judge-model', async () => {
    const common = comparisonArgs('judge', model, work.adapter, prompts);
    const badUrl = await webtune([...common, '--judge-url', 'ftp://x', '--judge-model', 'm']);
    expect(badUrl.code).toBe(2);
    expect(errorLines(badUrl.stderr)).toEqual([
      'webtune eval: --judge-url must be an http(s) URL, got "ftp://x"',
    ]);
    const noModel = await webtune([...common, '--judge-url', 'http://127.0.0.1:9/v1']);
    expect(noModel.code).toBe(2);
    expect(errorLines(noModel.stderr)).toEqual(['webtune eval: --judge-model is required']);
    // A port nothing listens on: refused before any answer is generated.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = await webtune([
      ...common,
      '--judge-url',
      `http://127.0.0.1:${port}/v1`,
      '--judge-model',
      'm',
    ]);
    expect(unreachable.code).toBe(1);
    expect(errorLines(unreachable.stderr)).toEqual([
      `webtune eval: the judge endpoint http://127.0.0.1:${port}/v1 could not be reached (ECONNREFUSED)`,
    ]);
  });
});
