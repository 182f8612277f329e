#!/usr/bin/env node
/**
 * Soak of `webtune serve` (issue 19): 200 mixed requests from 20 concurrent clients, on loopback,
 * against the built CLI (apps/cli/dist) and a real model. Each client sends 10 requests, drawn in
 * a fixed order from: good (JSON, streamed and not), bad (broken JSON, wrong Content-Type, foreign
 * Host, cross-site Origin, oversized body, bad fields, unknown route) and abandoned (the client
 * closes the connection mid-answer). The soak passes when every good request is answered with
 * text, every bad one gets its 4xx, the server is healthy at the end and still answers a good
 * request, and the access log records the abandoned ones as abandoned.
 *
 *   node tools/soak/serve-soak.mjs [--model DIR] [--clients 20] [--per-client 10]
 *
 * Prints the figures as JSON on the last line; exits 1 when a check fails. Bounded: each request
 * has a 120 s limit and the whole soak 15 minutes.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(root, 'fixtures/models/stories260K-hf') },
    clients: { type: 'string', default: '20' },
    'per-client': { type: 'string', default: '10' },
  },
});
const CLIENTS = Number(values.clients);
const PER_CLIENT = Number(values['per-client']);
const KINDS = [
  'good',
  'good-stream',
  'bad-json',
  'bad-content-type',
  'bad-host',
  'bad-origin',
  'good',
  'bad-oversized',
  'bad-field',
  'abandoned',
  'bad-route',
  'good-stream',
  'abandoned-stream',
];
const EXPECTED = {
  'bad-json': 400,
  'bad-content-type': 415,
  'bad-host': 403,
  'bad-origin': 403,
  'bad-oversized': 413,
  'bad-field': 400,
  'bad-route': 404,
};

const deadline = setTimeout(() => {
  console.error('serve-soak: over 15 minutes; stopping');
  process.exit(1);
}, 15 * 60_000);

const server = spawn(
  process.execPath,
  [
    join(root, 'apps/cli/dist/cli.js'),
    'serve',
    '--model',
    values.model,
    '--port',
    '0',
    '--max-body-bytes',
    '8192',
  ],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
);
let stdout = '';
let stderr = '';
server.stdout.on('data', (chunk) => {
  stdout += chunk;
});
server.stderr.on('data', (chunk) => {
  stderr += chunk;
});
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stdout}\n${stderr}`)), 120_000);
  const poll = setInterval(() => {
    const match = /on http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(stdout);
    if (match) {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(Number(match[1]));
    }
  }, 50);
  server.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
});

function send({ method = 'POST', path = '/v1/chat/completions', headers = {}, body, abandonAfterMs }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { Host: `127.0.0.1:${port}`, ...headers },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode, body: text, ms: performance.now() - started }),
        );
        response.on('error', () => resolve({ status: 'abandoned', ms: performance.now() - started }));
      },
    );
    request.setTimeout(120_000, () => request.destroy(new Error('timeout')));
    request.on('error', (error) =>
      resolve({
        status: abandonAfterMs ? 'abandoned' : `error: ${error.message}`,
        ms: performance.now() - started,
      }),
    );
    if (abandonAfterMs) setTimeout(() => request.destroy(), abandonAfterMs);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const ask = (content, extra = {}) =>
  JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 6, temperature: 0, ...extra });

function requestFor(kind, client, index) {
  const prompt = `Client ${client} asks question ${index}: tell me a story`;
  switch (kind) {
    case 'good':
      return { headers: JSON_TYPE, body: ask(prompt) };
    case 'good-stream':
      return { headers: JSON_TYPE, body: ask(prompt, { stream: true }) };
    case 'bad-json':
      return { headers: JSON_TYPE, body: '{"messages": [' };
    case 'bad-content-type':
      return { headers: { 'Content-Type': 'text/plain' }, body: ask(prompt) };
    case 'bad-host':
      return { method: 'GET', path: '/v1/models', headers: { Host: 'rebound.evil.example' } };
    case 'bad-origin':
      return { headers: { ...JSON_TYPE, Origin: 'https://evil.example' }, body: ask(prompt) };
    case 'bad-oversized':
      return { headers: JSON_TYPE, body: ask('x'.repeat(20_000)) };
    case 'bad-field':
      return { headers: JSON_TYPE, body: ask(prompt, { temperature: 'hot' }) };
    case 'bad-route':
      return { method: 'GET', path: '/v1/engines', headers: {} };
    case 'abandoned':
      return { headers: JSON_TYPE, body: ask(prompt, { max_tokens: 64 }), abandonAfterMs: 30 };
    case 'abandoned-stream':
      return { headers: JSON_TYPE, body: ask(prompt, { max_tokens: 64, stream: true }), abandonAfterMs: 30 };
  }
  throw new Error(kind);
}

function judge(kind, result) {
  if (kind === 'good') {
    if (result.status !== 200) return `status ${result.status}`;
    const body = JSON.parse(result.body);
    return typeof body.choices?.[0]?.message?.content === 'string' && body.usage.completion_tokens > 0
      ? null
      : 'no text';
  }
  if (kind === 'good-stream') {
    if (result.status !== 200) return `status ${result.status}`;
    const events = result.body.trim().split('\n\n');
    if (events.at(-1) !== 'data: [DONE]') return 'no [DONE]';
    if (events.some((event) => event.includes('"error"'))) return 'an error event';
    return null;
  }
  if (kind.startsWith('abandoned')) return null; // whatever the client saw; the server's health is checked after
  if (result.status !== EXPECTED[kind]) return `status ${result.status}, expected ${EXPECTED[kind]}`;
  return JSON.parse(result.body).error?.message ? null : 'no error message';
}

const started = performance.now();
const outcomes = [];
await Promise.all(
  Array.from({ length: CLIENTS }, async (_, client) => {
    for (let index = 0; index < PER_CLIENT; index++) {
      const kind = KINDS[(client * PER_CLIENT + index) % KINDS.length];
      const result = await send(requestFor(kind, client, index));
      outcomes.push({ kind, status: result.status, ms: result.ms, problem: judge(kind, result) });
    }
  }),
);
const wallSeconds = (performance.now() - started) / 1000;

// After the soak: healthy, and a good request still answered.
await new Promise((resolve) => setTimeout(resolve, 500));
const health = await send({ method: 'GET', path: '/health' });
const after = await send({ headers: JSON_TYPE, body: ask('One more story') });
const healthy = health.status === 200 && JSON.parse(health.body).queued === 0;
const answeredAfter = judge('good', after) === null;
server.kill('SIGINT');
const exitCode = await new Promise((resolve) => server.on('exit', (code) => resolve(code)));
clearTimeout(deadline);

const byKind = {};
for (const outcome of outcomes) {
  byKind[outcome.kind] ??= { sent: 0, ok: 0, statuses: {} };
  const entry = byKind[outcome.kind];
  entry.sent++;
  if (!outcome.problem) entry.ok++;
  entry.statuses[outcome.status] = (entry.statuses[outcome.status] ?? 0) + 1;
}
const goodTimes = outcomes
  .filter((outcome) => outcome.kind.startsWith('good'))
  .map((outcome) => outcome.ms)
  .sort((a, b) => a - b);
const percentile = (q) =>
  Math.round(goodTimes[Math.min(goodTimes.length - 1, Math.floor(q * goodTimes.length))]);
const logLines = stderr.split('\n').filter((line) => / (GET|POST) \//.test(line));
const figures = {
  requests: outcomes.length,
  clients: CLIENTS,
  wallSeconds: Number(wallSeconds.toFixed(1)),
  byKind,
  goodAnswered: outcomes.filter((o) => o.kind.startsWith('good') && !o.problem).length,
  goodSent: outcomes.filter((o) => o.kind.startsWith('good')).length,
  goodLatencyMs: { p50: percentile(0.5), p95: percentile(0.95), max: Math.round(goodTimes.at(-1)) },
  accessLog: {
    lines: logLines.length,
    abandoned: logLines.filter((line) => /aborted by the client/.test(line)).length,
    serverErrors: logLines.filter((line) => / 5\d\d /.test(line) && !/ 503 /.test(line)).length,
  },
  healthyAfter: healthy,
  answeredAfter,
  serverExitCode: exitCode,
};
const problems = outcomes.filter((o) => o.problem).map((o) => `${o.kind}: ${o.problem}`);
if (!healthy) problems.push(`health after the soak: ${health.status} ${health.body}`);
if (!answeredAfter) problems.push(`a good request after the soak: ${after.status} ${after.body}`);
if (figures.accessLog.serverErrors > 0)
  problems.push(`${figures.accessLog.serverErrors} 5xx answers in the access log`);
// A request abandoned before the server read it leaves no line at all, so the count of abandoned
// lines is a figure, not a check; a 200 for one would show as more 200 lines than good requests.
const ok200 = logLines.filter((line) => / 200 \d+ms$/.test(line) && /chat\/completions/.test(line)).length;
if (ok200 > figures.goodSent + 1)
  problems.push(`${ok200} completions logged as 200 for ${figures.goodSent} good requests`);
if (exitCode !== 0) problems.push(`serve exited with ${exitCode}`);
for (const problem of [...new Set(problems)]) console.error(`serve-soak: ${problem}`);
console.log(JSON.stringify(figures));
process.exit(problems.length === 0 ? 0 : 1);
