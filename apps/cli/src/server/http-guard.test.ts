import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostName, isLoopbackHost } from './http-guard.js';
import {
  type FakeBehaviour,
  fakeEngine,
  listen,
  type RawResponse,
  send,
  startServe,
  startWebui,
} from './testing-servers.js';

const JSON_TYPE = { 'Content-Type': 'application/json' };
const ask = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
const answered = (response: RawResponse | 'abandoned') => {
  if (response === 'abandoned') throw new Error('the request was abandoned');
  return response;
};

describe('host names', () => {
  it('reads Host headers and knows loopback', () => {
    expect(hostName('127.0.0.1:8000')).toBe('127.0.0.1');
    expect(hostName('[::1]:8000')).toBe('::1');
    expect(hostName('Evil.Example.:80')).toBe('evil.example');
    expect(hostName('a b')).toBeNull();
    expect(hostName('x@y')).toBeNull();
    expect(hostName(undefined)).toBeNull();
    for (const host of ['localhost', '127.0.0.1', '::1', '[::1]', 'app.localhost', '127.1.2.3'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', 'evil.example', '192.168.1.5', 'localhost.evil.example'])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});

describe('serve: only its user can drive it (issue 19, cases 4 and 6)', () => {
  let behaviour: FakeBehaviour = {};
  const engine = fakeEngine(() => behaviour);
  const log: string[] = [];
  const server = startServe(engine, {
    onRequest: (line) => log.push(line),
    allowOrigins: ['http://localhost:5173'],
    allowHosts: ['myserver.lan'],
  });
  let port: number;
  beforeAll(async () => {
    port = await listen(server);
  });
  afterAll(() => server.close());

  it('refuses a Host that is not its own (DNS rebinding), on every route', async () => {
    for (const path of ['/v1/models', '/health']) {
      const refused = answered(await send(port, { path, headers: { Host: 'evil.example' } }));
      expect(refused.status, path).toBe(403);
      expect(JSON.parse(refused.body).error.code).toBe('host_not_allowed');
    }
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      '192.168.1.5:8000',
      'myserver.lan',
    ])
      expect(answered(await send(port, { path: '/v1/models', headers: { Host: host } })).status, host).toBe(
        200,
      );
    expect(answered(await send(port, { path: '/v1/models', headers: { Host: 'bad host' } })).status).toBe(
      400,
    );
  });

  it('reads a target that starts with // as a path (it threw outside the handler; found by the fuzzer)', async () => {
    const odd = answered(await send(port, { path: '//%2F/x?y' }));
    expect(odd.status).toBe(404);
    expect(answered(await send(port, { path: '/health' })).status).toBe(200);
  });

  it('refuses cross-site requests and bodies that are not declared JSON', async () => {
    const calls = engine.calls;
    const crossSite = answered(
      await send(port, {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'Content-Type': 'text/plain', Origin: 'https://evil.example' },
        body: ask,
      }),
    );
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers['access-control-allow-origin']).toBeUndefined();
    const plain = answered(
      await send(port, {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'Content-Type': 'text/plain' },
        body: ask,
      }),
    );
    expect(plain.status).toBe(415);
    expect(JSON.parse(plain.body).error.code).toBe('unsupported_media_type');
    expect(engine.calls).toBe(calls);
    const ok = answered(
      await send(port, { method: 'POST', path: '/v1/chat/completions', headers: JSON_TYPE, body: ask }),
    );
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).choices[0].message.content).toBe('echo: hi');
  });

  it('answers CORS preflights: allowed origins get the headers, others 403', async () => {
    const allowed = answered(
      await send(port, {
        method: 'OPTIONS',
        path: '/v1/chat/completions',
        headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Method': 'POST' },
      }),
    );
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(allowed.headers['access-control-allow-methods']).toBe('GET, POST, OPTIONS');
    expect(allowed.headers['access-control-allow-headers']).toMatch(/Authorization, Content-Type/);
    const denied = answered(
      await send(port, {
        method: 'OPTIONS',
        path: '/v1/chat/completions',
        headers: { Origin: 'https://evil.example' },
      }),
    );
    expect(denied.status).toBe(403);
    const cors = answered(
      await send(port, {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { ...JSON_TYPE, Origin: 'http://localhost:5173' },
        body: ask,
      }),
    );
    expect(cors.status).toBe(200);
    expect(cors.headers['access-control-allow-origin']).toBe('http://localhost:5173');
  });

  it('a stream that fails after the 200 ends with an error event, then [DONE]', async () => {
    behaviour = { failWith: new Error("generate: the model's next-token logits are NaN (row 0)") };
    try {
      const streamed = answered(
        await send(port, {
          method: 'POST',
          path: '/v1/chat/completions',
          headers: JSON_TYPE,
          body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
        }),
      );
      expect(streamed.status).toBe(200);
      const events = streamed.body.trim().split('\n\n');
      expect(events.at(-1)).toBe('data: [DONE]');
      const error = JSON.parse(events.at(-2)!.slice('data: '.length));
      expect(error.error).toMatchObject({
        type: 'server_error',
        message: expect.stringMatching(/logits are NaN/),
      });
      expect(JSON.parse(events[1].slice('data: '.length)).choices[0].delta.content).toBe('echo: ');
    } finally {
      behaviour = {};
    }
  });

  it('logs an abandoned request as abandoned, not as 200', async () => {
    behaviour = { delayMs: 400 };
    try {
      log.length = 0;
      const result = await send(port, {
        method: 'POST',
        path: '/v1/chat/completions',
        headers: JSON_TYPE,
        body: ask,
        abandonAfterMs: 50,
      });
      expect(result).toBe('abandoned');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(log).toEqual([
        expect.stringMatching(/^POST \/v1\/chat\/completions 499 aborted by the client \d+ms$/),
      ]);
      answered(await send(port, { path: '/v1/models' }));
      expect(log[1]).toMatch(/^GET \/v1\/models 200 \d+ms$/);
    } finally {
      behaviour = {};
    }
  });
});

describe('webui: Host, token, output_dir (issue 19, cases 3 and 7)', () => {
  const token = 'a'.repeat(48);
  const webui = startWebui({ bindHost: '0.0.0.0', token });
  let port: number;
  beforeAll(async () => {
    port = await listen(webui.server);
  });
  afterAll(() => {
    webui.server.close();
    rmSync(webui.folder, { recursive: true, force: true });
  });
  const withToken = { Authorization: `Bearer ${token}` };

  it('bound beyond loopback it still refuses foreign Host names and asks for the token', async () => {
    expect(
      answered(await send(port, { path: '/api/info', headers: { Host: 'evil.example', ...withToken } }))
        .status,
    ).toBe(403);
    const noToken = answered(await send(port, { path: '/api/info' }));
    expect(noToken.status).toBe(401);
    expect(JSON.parse(noToken.body).error).toMatch(/a token is required/);
    expect(answered(await send(port, { path: '/' })).status).toBe(401);
    expect(
      answered(await send(port, { path: '/api/info', headers: { Authorization: 'Bearer wrong' } })).status,
    ).toBe(401);
    expect(answered(await send(port, { path: '/api/info', headers: withToken })).status).toBe(200);
    // The printed URL: ?token= sets a cookie the page's later requests carry.
    const page = answered(await send(port, { path: `/?token=${token}` }));
    expect(page.status).toBe(200);
    const cookie = String(page.headers['set-cookie']).split(';')[0];
    expect(cookie).toBe(`webtune_token=${token}`);
    expect(String(page.headers['set-cookie'])).toMatch(/HttpOnly; SameSite=Strict/);
    expect(answered(await send(port, { path: '/api/info', headers: { Cookie: cookie } })).status).toBe(200);
  });

  it('refuses an output_dir outside --output-root, and cross-site posts', async () => {
    const post = (config: Record<string, unknown>, headers: Record<string, string> = {}) =>
      send(port, {
        method: 'POST',
        path: '/api/runs',
        headers: { ...JSON_TYPE, ...withToken, ...headers },
        body: JSON.stringify({ config }),
      });
    for (const outputDir of ['/tmp/elsewhere', '../escape', join(webui.folder, 'runs/../app')]) {
      const refused = answered(await post({ output_dir: outputDir, model_name_or_path: 'm', dataset: 'd' }));
      expect(refused.status, outputDir).toBe(403);
      expect(JSON.parse(refused.body).error).toMatch(/is outside --output-root/);
    }
    const crossSite = answered(await post({ output_dir: 'x' }, { Origin: 'https://evil.example' }));
    expect(crossSite.status).toBe(403);
    const form = answered(
      await send(port, {
        method: 'POST',
        path: '/api/runs',
        headers: { 'Content-Type': 'text/plain', ...withToken },
        body: '{}',
      }),
    );
    expect(form.status).toBe(415);
  });

  it('answers a path that is not valid percent-encoding with 400, not 500', async () => {
    const bad = answered(await send(port, { path: '/api/runs/%E0%A4%A', headers: withToken }));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/not valid percent-encoding/);
  });
});

describe('webui on loopback', () => {
  const webui = startWebui();
  let port: number;
  beforeAll(async () => {
    port = await listen(webui.server);
  });
  afterAll(() => {
    webui.server.close();
    rmSync(webui.folder, { recursive: true, force: true });
  });

  it('needs no token, refuses rebinding Hosts and allows its own origin', async () => {
    expect(answered(await send(port, { path: '/api/info' })).status).toBe(200);
    expect(answered(await send(port, { path: '/api/info', headers: { Host: 'evil.example' } })).status).toBe(
      403,
    );
    const same = answered(
      await send(port, { path: '/api/info', headers: { Origin: `http://127.0.0.1:${port}` } }),
    );
    expect(same.status).toBe(200);
  });
});
