import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsBytes, shardSafetensors } from '@webtune/safetensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DownloadProgress, downloadModel, snapshotDir } from './hub.js';

const MODEL_DIR = 'models/stories260K-hf';

/**
 * A stand-in for the hub on 127.0.0.1: serves folders at /<owner>/<name>/resolve/<revision>/<file>
 * with Range support, logs requests, and can cut a response short to simulate a dropped link.
 */
class FakeHub {
  readonly requests: { url: string; range: string | undefined }[] = [];
  /** file name -> bytes after which the next response for it is cut (once). */
  readonly cutAfter = new Map<string, number>();
  readonly repos = new Map<string, string>();
  requireToken: string | null = null;
  private server!: Server;
  endpoint = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: import('node:http').ServerResponse) {
    const url = decodeURIComponent(request.url ?? '');
    this.requests.push({ url, range: request.headers.range });
    const match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const folder = match ? this.repos.get(match[1]) : undefined;
    if (this.requireToken && request.headers.authorization !== `Bearer ${this.requireToken}`) {
      response.writeHead(401).end('unauthorized');
      return;
    }
    if (!match || !folder || match[2] !== 'main') {
      response.writeHead(404).end('not found');
      return;
    }
    const path = join(folder, match[3]);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      response.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= size) {
        response.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      response.writeHead(206, {
        'Content-Range': `bytes ${start}-${size - 1}/${size}`,
        'Content-Length': size - start,
      });
    } else {
      response.writeHead(200, { 'Content-Length': size });
    }
    const cut = this.cutAfter.get(match[3]);
    if (cut !== undefined) {
      this.cutAfter.delete(match[3]);
      const stream = createReadStream(path, { start, end: start + cut - 1 });
      stream.on('data', (chunk) => response.write(chunk));
      stream.on('end', () => response.socket?.destroy());
      return;
    }
    createReadStream(path, { start }).pipe(response);
  }
}

describe.skipIf(!requireFixtures(MODEL_DIR))('downloadModel against a local hub', () => {
  const hub = new FakeHub();
  let cacheDir: string;
  let shardedDir: string;
  const source = fixturePath(MODEL_DIR);

  beforeAll(async () => {
    await hub.start();
    cacheDir = await mkdtemp(join(tmpdir(), 'webtune-hub-cache-'));
    // A sharded copy of the model, built from the fixture's tensors.
    shardedDir = await mkdtemp(join(tmpdir(), 'webtune-hub-sharded-'));
    const { tensors } = readSafetensorsBytes(
      new Uint8Array(await readFile(join(source, 'model.safetensors'))),
    );
    const { files, indexJson } = shardSafetensors(tensors, { maxShardBytes: 300_000 });
    for (const file of files) await writeFile(join(shardedDir, file.fileName), file.bytes);
    await writeFile(join(shardedDir, 'model.safetensors.index.json'), indexJson);
    await writeFile(join(shardedDir, 'config.json'), await readFile(join(source, 'config.json')));
    hub.repos.set('karpathy/stories260K', source);
    hub.repos.set('test/stories260K-sharded', shardedDir);
  });

  afterAll(async () => {
    await hub.stop();
    await rm(cacheDir, { recursive: true, force: true });
    await rm(shardedDir, { recursive: true, force: true });
  });

  it('fetches config, tokenizer and weights in the hub layout, with progress, then serves them from the cache', async () => {
    const events: DownloadProgress[] = [];
    const directory = await downloadModel('karpathy/stories260K', {
      endpoint: hub.endpoint,
      cacheDir,
      onProgress: (event) => events.push(event),
    });
    expect(directory).toBe(snapshotDir('karpathy/stories260K', 'main', cacheDir));
    for (const file of [
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
      'model.safetensors',
    ]) {
      expect(Buffer.compare(await readFile(join(directory, file)), await readFile(join(source, file)))).toBe(
        0,
      );
    }
    const done = events.filter((event) => event.done).map((event) => event.file);
    expect(done).toContain('model.safetensors');
    const weights = events.filter((event) => event.file === 'model.safetensors');
    expect(weights.at(-1)?.receivedBytes).toBe((await stat(join(source, 'model.safetensors'))).size);
    expect(weights.at(-1)?.totalBytes).toBe(weights.at(-1)?.receivedBytes);
    // The index does not exist on this repo: asked once, remembered.
    expect(hub.requests.some((r) => r.url.endsWith('model.safetensors.index.json'))).toBe(true);

    const before = hub.requests.length;
    const cachedEvents: DownloadProgress[] = [];
    await downloadModel('karpathy/stories260K', {
      endpoint: hub.endpoint,
      cacheDir,
      onProgress: (e) => cachedEvents.push(e),
    });
    expect(hub.requests.length).toBe(before);
    expect(cachedEvents.every((event) => event.cached && event.done)).toBe(true);
  });

  it('resumes a dropped transfer with a Range request instead of starting over', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'webtune-hub-resume-'));
    const size = (await stat(join(source, 'model.safetensors'))).size;
    hub.cutAfter.set('model.safetensors', 400_000);
    hub.requests.length = 0;
    const directory = await downloadModel('karpathy/stories260K', {
      endpoint: hub.endpoint,
      cacheDir: cache,
    });
    expect(
      Buffer.compare(
        await readFile(join(directory, 'model.safetensors')),
        await readFile(join(source, 'model.safetensors')),
      ),
    ).toBe(0);
    const weightRequests = hub.requests.filter((r) => r.url.endsWith('/model.safetensors'));
    expect(weightRequests).toHaveLength(2);
    expect(weightRequests[0].range).toBeUndefined();
    const resumedAt = Number(/bytes=(\d+)-/.exec(weightRequests[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(size);
    await rm(cache, { recursive: true, force: true });
  });

  it('resumes in a later run from the partial file a failed run left', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'webtune-hub-later-'));
    hub.cutAfter.set('model.safetensors', 300_000);
    await expect(
      downloadModel('karpathy/stories260K', { endpoint: hub.endpoint, cacheDir: cache, attempts: 1 }),
    ).rejects.toThrow(/run again to resume/);
    const directory = snapshotDir('karpathy/stories260K', 'main', cache);
    const partial = (await stat(join(directory, 'model.safetensors.incomplete'))).size;
    expect(partial).toBeGreaterThan(0);
    hub.requests.length = 0;
    await downloadModel('karpathy/stories260K', { endpoint: hub.endpoint, cacheDir: cache });
    const weightRequests = hub.requests.filter((r) => r.url.endsWith('/model.safetensors'));
    expect(weightRequests.map((r) => r.range)).toEqual([`bytes=${partial}-`]);
    expect(
      Buffer.compare(
        await readFile(join(directory, 'model.safetensors')),
        await readFile(join(source, 'model.safetensors')),
      ),
    ).toBe(0);
    expect((await readdir(directory)).some((name) => name.endsWith('.incomplete'))).toBe(false);
    await rm(cache, { recursive: true, force: true });
  });

  it('fetches every shard an index lists', async () => {
    const directory = await downloadModel('test/stories260K-sharded', { endpoint: hub.endpoint, cacheDir });
    const expected = (await readdir(shardedDir)).sort();
    const got = (await readdir(directory)).filter((name) => !name.endsWith('.missing')).sort();
    expect(got).toEqual(expected);
    expect(expected.filter((name) => name.startsWith('model-')).length).toBeGreaterThan(1);
  });

  it('explains a missing repository and a refused token', async () => {
    await expect(downloadModel('nobody/nothing', { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(
      /config\.json was not found/,
    );
    hub.requireToken = 'secret';
    try {
      const cache = await mkdtemp(join(tmpdir(), 'webtune-hub-token-'));
      await expect(
        downloadModel('karpathy/stories260K', { endpoint: hub.endpoint, cacheDir: cache, token: 'wrong' }),
      ).rejects.toThrow(/401.*gated or private.*token was refused/);
      await expect(
        downloadModel('karpathy/stories260K', { endpoint: hub.endpoint, cacheDir: cache, token: 'secret' }),
      ).resolves.toBeTypeOf('string');
      await rm(cache, { recursive: true, force: true });
    } finally {
      hub.requireToken = null;
    }
    await expect(downloadModel('../etc', { endpoint: hub.endpoint, cacheDir })).rejects.toThrow(
      /not a hub repository id/,
    );
  });
});
