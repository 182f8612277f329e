import { request } from 'node:http';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCli, startCli } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const KEY = 'test-key-123';

/** The content of an SSE chat stream, its chunks, and whether it ended with [DONE]. */
function parseStream(text: string) {
  const events = text
    .split('\n\n')
    .map((block) => block.trim())
    .filter(Boolean)
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      return block.slice('data: '.length);
    });
  const done = events.at(-1) === '[DONE]';
  const chunks = events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  return { chunks, content, done };
}

describe.skipIf(!requireFixtures(STORIES))('webtune serve (OpenAI-compatible API)', () => {
  let server: RunningCli;
  let base: string;
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` };
  const chat = (body: unknown, extra: Record<string, string> = {}) =>
    fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...headers, ...extra },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const ask = { model: 'stories', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16 };

  beforeAll(async () => {
    server = startCli([
      'serve',
      '--model',
      fixturePath(STORIES),
      '--port',
      '0',
      '--api-key',
      KEY,
      '--model-name',
      'stories',
      '--max-body-bytes',
      '4096',
    ]);
    const match = await server.waitFor(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
    base = `http://127.0.0.1:${match[1]}`;
  });
  afterAll(async () => {
    server.child.kill('SIGINT');
    const exit = await server.exited;
    expect(exit.code).toBe(0);
  });

  it('binds to 127.0.0.1 and lists the model', async () => {
    expect(server.stdout()).toMatch(/"stories" \(template empty\) on http:\/\/127\.0\.0\.1:\d+\/v1/);
    const response = await fetch(`${base}/v1/models`, { headers });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.object).toBe('list');
    expect(body.data.map((m: { id: string }) => m.id)).toEqual(['stories']);
  });

  it('answers a chat completion, and the same text streamed as server-sent events', async () => {
    const response = await chat(ask);
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0].message.role).toBe('assistant');
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.usage.completion_tokens).toBe(16);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + 16);
    const text = body.choices[0].message.content as string;
    expect(text.length).toBeGreaterThan(10);

    const streamed = await chat({ ...ask, stream: true, stream_options: { include_usage: true } });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('content-type')).toBe('text/event-stream');
    const events = parseStream(await streamed.text());
    expect(events.done).toBe(true);
    expect(events.content).toBe(text);
    expect(events.chunks[0].choices[0].delta.role).toBe('assistant');
    expect(
      events.chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === events.chunks[0].id),
    ).toBe(true);
    expect(events.chunks.at(-2).choices[0].finish_reason).toBe('length');
    expect(events.chunks.at(-1).usage.completion_tokens).toBe(16);
    expect(events.chunks.length).toBeGreaterThan(5);
  });

  it('decodes concurrent requests together in one batch: each gets the answer it would get alone (own max_tokens, stop, stream)', async () => {
    const requests = [
      { ...ask, messages: [{ role: 'user', content: 'Tell me a story' }] },
      { ...ask, max_tokens: 9, messages: [{ role: 'user', content: 'Who is Lily?' }] },
      { ...ask, max_tokens: 24, messages: [{ role: 'user', content: 'What is a ball?' }] },
      { ...ask, max_tokens: 20, messages: [{ role: 'user', content: 'Once upon a time' }] },
    ];
    const alone: { content: string; finish: string; tokens: number }[] = [];
    for (const body of requests) {
      const answer = await (await chat(body)).json();
      alone.push({
        content: answer.choices[0].message.content,
        finish: answer.choices[0].finish_reason,
        tokens: answer.usage.completion_tokens,
      });
    }
    // A stop text from the middle of the last answer cuts that request alone.
    const stopAt = alone[3].content
      .slice(Math.floor(alone[3].content.length / 2))
      .trim()
      .split(' ')[0];
    expect(stopAt.length).toBeGreaterThan(0);
    const stopped = await (await chat({ ...requests[3], stop: [stopAt] })).json();
    const cut = stopped.choices[0].message.content as string;
    expect(cut).toBe(alone[3].content.slice(0, alone[3].content.indexOf(stopAt)));
    expect(stopped.choices[0].finish_reason).toBe('stop');
    // The first request occupies the device; the others wait and then decode as one batch.
    const together = await Promise.all([
      ...requests
        .slice(0, 3)
        .flatMap((body) => [
          chat(body).then(async (r) => (await r.json()).choices[0].message.content as string),
          chat({ ...body, stream: true }).then(async (r) => parseStream(await r.text()).content),
        ]),
      chat({ ...requests[3], stop: [stopAt], stream: true }).then(
        async (r) => parseStream(await r.text()).content,
      ),
    ]);
    for (let i = 0; i < 3; i++) {
      expect(together[2 * i], `request ${i}`).toBe(alone[i].content);
      expect(together[2 * i + 1], `request ${i} streamed`).toBe(alone[i].content);
    }
    expect(together[6]).toBe(cut);
    expect(alone[1].tokens).toBeLessThanOrEqual(9);
    const health = await (await fetch(`${base}/health`, { headers })).json();
    expect(health.largest_batch).toBeGreaterThan(1);
  });

  it('answers malformed requests with OpenAI-style JSON errors', async () => {
    const cases: [Response, number, RegExp][] = [
      [await chat('{"messages": [', {}), 400, /not valid JSON/],
      [await chat({ messages: [] }), 400, /messages must be a non-empty array/],
      [await chat({ messages: [{ role: 'assistant', content: 'hi' }] }), 400, /expected a user message/],
      [
        await chat({ messages: [{ role: 'wizard', content: 'hi' }] }),
        400,
        /role must be system, user or assistant/,
      ],
      [await chat({ ...ask, temperature: 'hot' }), 400, /temperature must be a number/],
      [await chat({ ...ask, max_tokens: 100000 }), 400, /max_tokens must be an integer in \[1, 512\]/],
      [
        await chat({ ...ask, model: 'gpt-4' }),
        404,
        /the model "gpt-4" does not exist; this server serves "stories"/,
      ],
      [await chat({ ...ask, messages: [{ role: 'user', content: 'x'.repeat(5000) }] }), 413, /limit is 4096/],
      [await chat(ask, { Authorization: 'Bearer wrong' }), 401, /valid API key is required/],
      [
        await fetch(`${base}/v1/completions`, { method: 'POST', headers, body: '{}' }),
        404,
        /no route POST \/v1\/completions/,
      ],
      [await fetch(`${base}/v1/chat/completions`, { headers }), 405, /GET is not allowed/],
    ];
    for (const [response, status, message] of cases) {
      expect(response.status, String(message)).toBe(status);
      expect(response.headers.get('content-type')).toBe('application/json');
      const body = await response.json();
      expect(body.error.message).toMatch(message);
      expect(typeof body.error.type).toBe('string');
    }
    // A body over the limit that does not declare its size is cut off too.
    const chunked = await new Promise<number>((resolve, reject) => {
      const port = Number(new URL(base).port);
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { ...headers, 'Transfer-Encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
      req.end();
    });
    expect(chunked).toBe(413);
    // Still serving after all that.
    expect((await chat(ask)).status).toBe(200);
  });
});
