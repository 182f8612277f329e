import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRewardScorer, RewardApiError } from './api-reward.js';
import type { PpoSample } from './ppo-rollout.js';

// A reward server in the test: replies as `reply` says, recording what it was sent.
let server: Server;
let url: string;
let reply: (body: { model: string; messages: string[] }, response: ServerResponse) => void;
const received: { method?: string; contentType?: string; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let text = '';
    request.on('data', (chunk) => {
      text += chunk;
    });
    request.on('end', () => {
      const body = JSON.parse(text);
      received.push({ method: request.method, contentType: request.headers['content-type'], body });
      reply(body, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/reward`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const letters = 'abcdefghijklmnopqrstuvwxyz';
const decode = (ids: number[]) => ids.map((id) => letters[id]).join('');
const samples: PpoSample[] = [
  { query: [0, 1], response: [2, 3, 4] },
  { query: [7], response: [8] },
] as PpoSample[];
const json = (status: number, body: string) => (_: unknown, response: ServerResponse) => {
  response.writeHead(status, { 'Content-Type': 'application/json' });
  response.end(body);
};

describe('reward_model_type: api', () => {
  it("posts LLaMA-Factory's request (query + answer decoded) and reads the scores back in order", async () => {
    // A server that scores each text by its length.
    reply = (body, response) =>
      json(200, JSON.stringify({ scores: body.messages.map((m) => m.length / 10) }))(body, response);
    const scores = await apiRewardScorer({ url, decode })(samples);
    expect(received.at(-1)).toEqual({
      method: 'POST',
      contentType: 'application/json',
      body: { model: 'model', messages: ['abcde', 'hi'] },
    });
    expect(scores).toEqual([0.5, 0.2]);
    // One-number lists are read as their number (LLaMA-Factory makes a tensor of each).
    reply = json(200, '{"scores": [[1.5], -2]}');
    expect(await apiRewardScorer({ url, decode })(samples)).toEqual([1.5, -2]);
  });

  it.each([
    ['a non-2xx status', json(503, 'overloaded'), /HTTP 503 .*overloaded/],
    ['a reply that is not JSON', json(200, '<html>'), /the reply is not JSON: "<html>"/],
    [
      'a reply without scores',
      json(200, '{"rewards": [1, 2]}'),
      /expected a reply \{"scores": \[2 numbers\]\}/,
    ],
    ['too few scores', json(200, '{"scores": [1]}'), /1 scores for 2 texts/],
    [
      'a score that is not a number',
      json(200, '{"scores": [1, "high"]}'),
      /scores\[1\] is "high", not a finite number/,
    ],
  ])('refuses %s, naming the URL', async (_, handler, message) => {
    reply = handler;
    const error = await apiRewardScorer({ url, decode })(samples).catch((caught) => caught);
    expect(error).toBeInstanceOf(RewardApiError);
    expect(error.message).toContain(`reward_model ${url}:`);
    expect(error.message).toMatch(message);
  });

  it('says when the server cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await apiRewardScorer({ url: `http://127.0.0.1:${port}/`, decode })(samples).catch(
      (caught) => caught,
    );
    expect(error).toBeInstanceOf(RewardApiError);
    expect(error.message).toMatch(new RegExp(`reward_model http://127.0.0.1:${port}/: cannot be reached`));
  });
});
