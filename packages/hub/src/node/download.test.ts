import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../hub-error.js';
import { downloadDataset, downloadModelSnapshot } from '../node.js';
import { blobIdOf, type HubServer, startHubServer } from '../testing/hub-server.js';

const TRAIN_0 = new Uint8Array(3000).map((_, i) => (i * 7) % 251);
const TRAIN_1 = new Uint8Array(1200).map((_, i) => (i * 11) % 253);
const JSONL = '{"instruction":"hi","output":"hello"}\n';

let server: HubServer;
let cacheFolder: string;
beforeAll(async () => {
  server = await startHubServer({
    'owner/data': {
      type: 'dataset',
      files: {
        'README.md': '# data',
        'data/train-00000-of-00002.parquet': TRAIN_0,
        'data/train-00001-of-00002.parquet': TRAIN_1,
        'data/test-00000-of-00001.parquet': 'test rows',
        'chat/dialogues.jsonl': JSONL,
      },
      lfs: ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet'],
    },
    'owner/private': { type: 'dataset', files: { 'train.jsonl': JSONL }, token: 'secret' },
    'owner/model': {
      type: 'model',
      files: {
        'config.json': '{}',
        'model.safetensors': TRAIN_1,
        'tokenizer.json': '{}',
        'README.md': '# model',
        'pytorch_model.bin': 'not read',
      },
      lfs: ['model.safetensors'],
    },
  });
  cacheFolder = mkdtempSync(join(tmpdir(), 'webtune-hub-'));
});
afterAll(async () => {
  await server?.close();
  rmSync(cacheFolder, { recursive: true, force: true });
});

const options = (extra: object = {}) => ({
  cacheFolder,
  settings: { endpoint: server.endpoint, token: null, offline: false },
  ...extra,
});

describe('downloads into the Hugging Face cache layout', () => {
  it("fetches a split's shards into blobs, links them from the snapshot and records the ref", async () => {
    const download = await downloadDataset('owner/data', { split: 'train' }, options());
    expect(download.commit).toBe(server.commit);
    expect(download.files).toEqual([
      'data/train-00000-of-00002.parquet',
      'data/train-00001-of-00002.parquet',
    ]);
    const repo = join(cacheFolder, 'datasets--owner--data');
    expect(readFileSync(join(repo, 'refs', 'main'), 'utf8')).toBe(server.commit);
    const link = join(repo, 'snapshots', server.commit, 'data', 'train-00000-of-00002.parquet');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    // The link is relative, as huggingface_hub writes it: ../../../blobs/<sha256 of the file>.
    expect(readlinkSync(link)).toBe(join('..', '..', '..', 'blobs', blobIdOf(TRAIN_0, true)));
    expect(new Uint8Array(readFileSync(download.paths[0]))).toEqual(TRAIN_0);
    expect(new Uint8Array(readFileSync(download.paths[1]))).toEqual(TRAIN_1);
    // Only the API and the two files were asked for; a second run asks the API only.
    const resolves = () => server.requests.filter((request) => request.path.includes('/resolve/')).length;
    expect(resolves()).toBe(2);
    expect(
      server.requests.every((r) => !r.path.includes('/resolve/') || r.path.startsWith('/datasets/')),
    ).toBe(true);
    await downloadDataset('owner/data', { split: 'train' }, options());
    expect(resolves()).toBe(2);
  });

  it('resumes a cut download with a Range request, in the same call and from an earlier run', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'webtune-hub-resume-'));
    const path = `/datasets/owner/data/resolve/${server.commit}/data/train-00000-of-00002.parquet`;
    server.cutNext.set(path, 1000);
    const cut = await downloadDataset('owner/data', { split: 'train' }, options({ cacheFolder: folder }));
    expect(new Uint8Array(readFileSync(cut.paths[0]))).toEqual(TRAIN_0);
    const asked = server.requests.filter((request) => request.path === path);
    expect(asked.at(-1)?.headers.range).toBe('bytes=1000-');
    // A partial blob left by an earlier run is continued, not fetched again.
    const blob = join(folder, 'datasets--owner--data', 'blobs', blobIdOf(TRAIN_1, true));
    rmSync(blob);
    rmSync(join(folder, 'datasets--owner--data', 'snapshots'), { recursive: true });
    writeFileSync(`${blob}.incomplete`, TRAIN_1.subarray(0, 700));
    const resumed = await downloadDataset('owner/data', { split: 'train' }, options({ cacheFolder: folder }));
    expect(new Uint8Array(readFileSync(resumed.paths[1]))).toEqual(TRAIN_1);
    const second = `/datasets/owner/data/resolve/${server.commit}/data/train-00001-of-00002.parquet`;
    expect(server.requests.filter((request) => request.path === second).at(-1)?.headers.range).toBe(
      'bytes=700-',
    );
    // Cut on every try: the error says so and the partial file stays for the next run.
    rmSync(folder, { recursive: true });
    for (const at of [10, 20, 30]) server.cutNext.set(path, at);
    const attempts = { attempts: 1, cacheFolder: folder };
    await expect(downloadDataset('owner/data', {}, options(attempts))).rejects.toThrow(/stopped.*resumes/);
    rmSync(folder, { recursive: true, force: true });
    server.cutNext.clear();
  });

  it('names 401 (set HF_TOKEN) and 404 clearly, and sends the token', async () => {
    const error = await downloadDataset('owner/private', {}, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).status).toBe(401);
    expect((error as Error).message).toMatch(/dataset owner\/private@main: .*401.*set HF_TOKEN/);
    const withToken = await downloadDataset(
      'owner/private',
      {},
      options({ settings: { endpoint: server.endpoint, token: 'secret', offline: false } }),
    );
    expect(readFileSync(withToken.paths[0], 'utf8')).toBe(JSONL);
    await expect(downloadDataset('owner/missing', {}, options())).rejects.toThrow(
      /dataset owner\/missing@main: not found on the hub \(404/,
    );
    await expect(downloadDataset('owner/data', { split: 'validation' }, options())).rejects.toThrow(
      /no data files for split "validation" \(files: data\/train-00000-of-00002.parquet, /,
    );
    await expect(downloadDataset('../etc', {}, options())).rejects.toThrow(/not a hub repository id/);
  });

  it('reads only the cache with HF_HUB_OFFLINE, and says what is missing', async () => {
    const offline = options({ settings: { endpoint: 'http://127.0.0.1:9', token: null, offline: true } });
    const cached = await downloadDataset('owner/data', { split: 'train' }, offline);
    expect(cached.files).toEqual(['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet']);
    await expect(downloadDataset('owner/other', {}, offline)).rejects.toThrow(
      /HF_HUB_OFFLINE is set and dataset owner\/other@main is not in the cache/,
    );
  });

  it('serves models from /{repo}/resolve: config, tokenizer and safetensors only', async () => {
    const folder = await downloadModelSnapshot('owner/model', options());
    expect(folder).toBe(join(cacheFolder, 'models--owner--model', 'snapshots', server.commit));
    expect(new Uint8Array(readFileSync(join(folder, 'model.safetensors')))).toEqual(TRAIN_1);
    expect(readFileSync(join(folder, 'config.json'), 'utf8')).toBe('{}');
    const asked = server.requests
      .filter((r) => r.path.startsWith('/owner/model/resolve/'))
      .map((r) => r.path);
    expect(asked.map((path) => path.split('/').at(-1)).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer.json',
    ]);
    mkdirSync(join(cacheFolder, 'unused'), { recursive: true });
  });
});
