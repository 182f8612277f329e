import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheStorageHubCache, memoryCacheStorage } from './cache-storage-cache.js';
import { downloadSnapshot } from './download.js';
import { selectModelFiles } from './select-files.js';
import { type HubServer, startHubServer } from './testing/hub-server.js';

// Weights of 3,000 bytes, kept in pieces of 512: a cut download leaves several pieces behind.
const WEIGHTS = new Uint8Array(3000).map((_, i) => (i * 13) % 251);
const SHARD = new Uint8Array(1300).map((_, i) => (i * 5) % 241);

let server: HubServer;
beforeAll(async () => {
  server = await startHubServer({
    'owner/model': {
      type: 'model',
      files: {
        'config.json': '{"model_type":"llama"}',
        'tokenizer.json': '{}',
        'model.safetensors': WEIGHTS,
        'README.md': '# not fetched',
      },
      lfs: ['model.safetensors'],
    },
    'owner/sharded': {
      type: 'model',
      files: {
        'config.json': '{}',
        'model.safetensors.index.json': '{"weight_map":{}}',
        'model-00001-of-00002.safetensors': SHARD,
        'model-00002-of-00002.safetensors': WEIGHTS,
      },
      lfs: ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'],
    },
    'owner/private': {
      type: 'model',
      files: { 'config.json': '{}', 'model.safetensors': SHARD },
      token: 't',
    },
  });
});
afterAll(() => server?.close());

const settings = () => ({ endpoint: server.endpoint, token: null, offline: false });
const model = (repo: string) => ({
  type: 'model' as const,
  select: (paths: string[]) => selectModelFiles(paths, repo),
});
const bytes = async (blob: Blob | null) => new Uint8Array(await blob!.arrayBuffer());
const resolves = (repo: string) =>
  server.requests.filter((request) => request.path.startsWith(`/${repo}/resolve/`));

describe('cacheStorageHubCache (Cache Storage, here in memory)', () => {
  it('keeps a snapshot that a second download reads without fetching a file, and lists its ref', async () => {
    const cache = cacheStorageHubCache(memoryCacheStorage(), { pieceBytes: 512 });
    const progress: { path: string; cached: boolean; done: boolean }[] = [];
    const snapshot = await downloadSnapshot('owner/model', cache, settings(), {
      ...model('owner/model'),
      onProgress: ({ path, cached, done }) => progress.push({ path, cached, done }),
    });
    expect(snapshot.files).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
    expect(await bytes(await cache.read(snapshot.folder, snapshot.commit, 'model.safetensors'))).toEqual(
      WEIGHTS,
    );
    expect(await (await cache.read(snapshot.folder, snapshot.commit, 'config.json'))!.text()).toBe(
      '{"model_type":"llama"}',
    );
    expect(await cache.listSnapshot(snapshot.folder, snapshot.commit)).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer.json',
    ]);
    expect(await cache.refs()).toEqual([
      { folder: 'models--owner--model', revision: 'main', commit: server.commit },
    ]);
    // The weights were reported as they arrived, then done.
    expect(progress.filter((p) => p.path === 'model.safetensors' && !p.done).length).toBeGreaterThan(0);
    expect(progress.filter((p) => p.done).map((p) => p.cached)).toEqual([false, false, false]);
    // No piece of a partial download is left.
    expect(await cache.partialSize(snapshot.folder, 'anything')).toBe(0);

    const fetched = resolves('owner/model').length;
    progress.length = 0;
    await downloadSnapshot('owner/model', cache, settings(), {
      ...model('owner/model'),
      onProgress: ({ path, cached, done }) => progress.push({ path, cached, done }),
    });
    expect(resolves('owner/model').length).toBe(fetched);
    expect(progress.every((p) => p.cached && p.done)).toBe(true);
    // Offline, the ref alone finds the snapshot.
    const offline = await downloadSnapshot(
      'owner/model',
      cache,
      { ...settings(), offline: true },
      model('owner/model'),
    );
    expect(offline.commit).toBe(server.commit);
  });

  it('resumes a cut download with a Range request from the end of the pieces it kept', async () => {
    const cache = cacheStorageHubCache(memoryCacheStorage(), { pieceBytes: 512 });
    const path = `/owner/model/resolve/${server.commit}/model.safetensors`;
    server.cutNext.set(path, 1100);
    const snapshot = await downloadSnapshot('owner/model', cache, settings(), model('owner/model'));
    const tries = server.requests.filter((request) => request.path === path);
    expect(tries.at(-2)?.headers.range).toBeUndefined();
    expect(tries.at(-1)?.headers.range).toBe('bytes=1100-');
    expect(await bytes(await cache.read(snapshot.folder, snapshot.commit, 'model.safetensors'))).toEqual(
      WEIGHTS,
    );

    // A download cut on every try keeps its pieces, and a later call continues from them.
    const later = cacheStorageHubCache(memoryCacheStorage(), { pieceBytes: 512 });
    server.cutNext.set(path, 700);
    await expect(
      downloadSnapshot('owner/model', later, settings(), { ...model('owner/model'), attempts: 1 }),
    ).rejects.toThrow(/stopped.*resumes from here/);
    const blob = (await import('./testing/hub-server.js')).blobIdOf(WEIGHTS, true);
    expect(await later.partialSize('models--owner--model', blob)).toBe(700);
    expect(await later.refs()).toEqual([]);
    await downloadSnapshot('owner/model', later, settings(), model('owner/model'));
    expect(server.requests.filter((request) => request.path === path).at(-1)?.headers.range).toBe(
      'bytes=700-',
    );
    expect(await bytes(await later.read('models--owner--model', server.commit, 'model.safetensors'))).toEqual(
      WEIGHTS,
    );
  });

  it('fetches the shards an index names, and sends the token to a private repository', async () => {
    const cache = cacheStorageHubCache(memoryCacheStorage());
    const sharded = await downloadSnapshot('owner/sharded', cache, settings(), model('owner/sharded'));
    expect(sharded.files).toEqual([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(
      await bytes(await cache.read(sharded.folder, sharded.commit, 'model-00001-of-00002.safetensors')),
    ).toEqual(SHARD);
    await expect(
      downloadSnapshot('owner/private', cache, settings(), model('owner/private')),
    ).rejects.toThrow(/401.*HF_TOKEN/);
    const allowed = await downloadSnapshot(
      'owner/private',
      cache,
      { ...settings(), token: 't' },
      model('owner/private'),
    );
    expect(await bytes(await cache.read(allowed.folder, allowed.commit, 'model.safetensors'))).toEqual(SHARD);
  });

  it('keeps buckets apart and reads nothing that was never written', async () => {
    const storage = memoryCacheStorage();
    const one = cacheStorageHubCache(storage, { name: 'one' });
    const two = cacheStorageHubCache(storage, { name: 'two' });
    await one.writeRef('models--a--b', 'main', 'c'.repeat(40));
    expect(await one.readRef('models--a--b', 'main')).toBe('c'.repeat(40));
    expect(await two.readRef('models--a--b', 'main')).toBeNull();
    expect(await one.listSnapshot('models--a--b', 'c'.repeat(40))).toBeNull();
    expect(await one.read('models--a--b', 'c'.repeat(40), 'config.json')).toBeNull();
    expect(one.locate('models--a--b', 'c'.repeat(40), 'sub dir/x.json')).toBe(
      `https://hub-cache.webtune.invalid/models--a--b/snapshots/${'c'.repeat(40)}/sub%20dir/x.json`,
    );
  });
});
