// The model judge against a real HTTP server on 127.0.0.1 that speaks OpenAI chat completions and
// returns scripted verdicts; then the judged pairs go out as a DPO dataset that @webtune/data loads.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadExamples, type PreferenceExample, parseDatasetInfo } from '@webtune/data';
import { directoryFileResolver } from '@webtune/data/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePreferenceDataset } from '../node.js';
import type { ComparisonSet } from './comparison.js';
import { combineVerdicts, endpointJudge, judgePairs, parseVerdict } from './judge.js';
import { chatCompletion } from './openai-client.js';
import { preferenceRows } from './preference-export.js';

const KEY = 'sk-test-123';

/**
 * The script, by the number in the prompt ("question N"): which answer the judge prefers.
 * `tuned` / `base`: that model's answer, wherever it is shown; `first`: whatever is shown as A
 * (position bias); `tie`; `tuned-or-tie`: tuned when it is shown as B, else a tie; `garbage`: no verdict.
 */
const SCRIPT = [
  'tuned',
  'tuned',
  'tuned',
  'tuned',
  'base',
  'first',
  'tie',
  'tuned-or-tie',
  'garbage',
  'tuned',
];

interface Received {
  model: string;
  authorization?: string;
  system: string;
  user: string;
  temperature: number;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => resolve(body));
  });
}

describe('judgePairs over an OpenAI-compatible HTTP server', () => {
  let server: Server;
  let baseUrl: string;
  const received: Received[] = [];
  let failuresLeft = 1;

  beforeAll(async () => {
    server = createServer(async (request, response) => {
      const body = await readBody(request);
      if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
        response.writeHead(404).end('{"error":"not found"}');
        return;
      }
      if (request.headers.authorization !== `Bearer ${KEY}`) {
        response
          .writeHead(401, { 'content-type': 'application/json' })
          .end('{"error":{"message":"bad key"}}');
        return;
      }
      if (failuresLeft > 0) {
        failuresLeft--;
        response.writeHead(503).end('busy');
        return;
      }
      const payload = JSON.parse(body);
      const [system, user] = payload.messages;
      received.push({
        model: payload.model,
        authorization: request.headers.authorization,
        system: system.content,
        user: user.content,
        temperature: payload.temperature,
      });
      const number = Number(/question (\d+)/.exec(user.content)?.[1]);
      const answerA = /\[Answer A\]\n([\s\S]*?)\n\[End of Answer A\]/.exec(user.content)?.[1] ?? '';
      const tunedShownAsA = answerA.startsWith('tuned');
      const verdict = {
        tuned: tunedShownAsA ? '[[A]]' : '[[B]]',
        base: tunedShownAsA ? '[[B]]' : '[[A]]',
        first: '[[A]]',
        tie: '[[C]]',
        'tuned-or-tie': tunedShownAsA ? '[[C]]' : '[[B]]',
        garbage: 'I cannot decide.',
      }[SCRIPT[number]];
      response.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          model: payload.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: `Both are short. Verdict:\n${verdict}` },
              finish_reason: 'stop',
            },
          ],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const set: ComparisonSet = {
    models: ['base', 'tuned'],
    pairs: SCRIPT.map((_, id) => ({
      id,
      prompt:
        id === 1
          ? { system: 'Be brief.', turns: [{ role: 'user', content: 'question 1' }] }
          : `question ${id}`,
      answers: [`base answer ${id}`, `tuned answer ${id}`],
    })),
  };

  it('judges each pair in both orders, cancels position bias, counts ties and unreadable replies', async () => {
    const judge = endpointJudge({ baseUrl: `${baseUrl}/`, model: 'judge-model', apiKey: KEY });
    const result = await judgePairs(set, judge, { concurrency: 3 });
    // One 503 was retried; then two requests per pair.
    expect(received).toHaveLength(20);
    expect(received.every((request) => request.model === 'judge-model' && request.temperature === 0)).toBe(
      true,
    );
    expect(received[0].system).toContain('[[A]]');
    expect(result.pairs.map((pair) => pair.winner)).toEqual([1, 1, 1, 1, 0, null, null, 1, null, 1]);
    expect(result.pairs[5]).toMatchObject({ verdicts: ['A', 'A'], consistent: false });
    expect(result.pairs[7].verdicts).toEqual(['B', 'tie']);
    expect(result.pairs[8].verdicts).toEqual(['invalid', 'invalid']);
    expect(result.invalid).toBe(1);
    expect(result.inconsistent).toBe(1);
    expect(result.summary).toMatchObject({ total: 9, wins: [1, 6], ties: 2 });
    expect(result.summary.winRate).toBeCloseTo(7 / 9, 12);
    expect(result.summary.interval[0]).toBeLessThan(7 / 9);
    expect(result.summary.interval[1]).toBeGreaterThan(7 / 9);
    // Decisive verdicts: 6 agreeing pairs x 2 (one A, one B each) + pair 5's two A's + pair 7's one B
    // = 15, of which A: 6 + 2 = 8.
    expect(result.firstPositionRate).toBeCloseTo(8 / 15, 12);

    // From evaluation straight to DPO: the decided pairs as a sharegpt preference dataset.
    const rows = preferenceRows(set, result.outcomes);
    expect(rows).toHaveLength(7);
    expect(rows[1]).toEqual({
      conversations: [{ from: 'human', value: 'question 1' }],
      chosen: { from: 'gpt', value: 'tuned answer 1' },
      rejected: { from: 'gpt', value: 'base answer 1' },
      system: 'Be brief.',
    });
    expect(rows[4]).toMatchObject({
      chosen: { value: 'base answer 4' },
      rejected: { value: 'tuned answer 4' },
    });
    const directory = await mkdtemp(join(tmpdir(), 'webtune-eval-'));
    try {
      await writePreferenceDataset(directory, 'judged_pairs', rows);
      const info = parseDatasetInfo(await readFile(join(directory, 'dataset_info.json'), 'utf8'));
      const loaded = await loadExamples({
        stage: 'dpo',
        datasets: ['judged_pairs'],
        datasetInfo: info,
        files: directoryFileResolver(directory),
      });
      expect(loaded.report.rejected).toEqual([]);
      expect(loaded.train).toHaveLength(7);
      const first = loaded.train[1] as PreferenceExample;
      expect(first.kind).toBe('preference');
      expect(first.conversation.system).toBe('Be brief.');
      expect(first.chosen.content).toBe('tuned answer 1');
      expect(first.rejected.content).toBe('base answer 1');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('reports a refused key and an unreachable endpoint with the URL', async () => {
    await expect(
      chatCompletion({ baseUrl, model: 'm', apiKey: 'wrong' }, [{ role: 'user', content: 'hi' }]),
    ).rejects.toThrow(
      `the judge endpoint ${baseUrl}/chat/completions answered 401: {"error":{"message":"bad key"}}`,
    );
    await expect(
      chatCompletion({ baseUrl: 'http://127.0.0.1:9/v1', model: 'm', retries: 0 }, [
        { role: 'user', content: 'hi' },
      ]),
    ).rejects.toThrow('the judge endpoint http://127.0.0.1:9/v1/chat/completions could not be reached');
  });
});

describe('verdicts', () => {
  it('reads the last verdict mark and combines the two orders', () => {
    expect(parseVerdict('A is wrong... [[B]]')).toBe('B');
    expect(parseVerdict('first [[A]] then on reflection [[ c ]]')).toBe('tie');
    expect(parseVerdict('[[tie]]')).toBe('tie');
    expect(parseVerdict('Answer A')).toBe('invalid');
    expect(combineVerdicts(['A', 'B'])).toEqual({ winner: 0, consistent: true });
    expect(combineVerdicts(['B', 'A'])).toEqual({ winner: 1, consistent: true });
    expect(combineVerdicts(['A', 'A'])).toEqual({ winner: null, consistent: false });
    expect(combineVerdicts(['tie', 'A'])).toEqual({ winner: 1, consistent: true });
    expect(combineVerdicts(['tie', 'tie'])).toEqual({ winner: null, consistent: true });
    expect(combineVerdicts(['A', 'invalid'])).toBeUndefined();
  });
});
