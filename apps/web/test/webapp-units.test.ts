/* Pure helpers of the Model and Export conveniences, in Node: hub addresses and zip packages. */

import { startHubServer } from '@webtune/hub/testing';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import {
  cachedHubModels,
  checkHubModel,
  downloadHubModel,
  QUICK_START_MODELS,
} from '../src/engine/hub-download.js';
import { zipFiles } from '../src/ui/zip.js';

describe('hub models', () => {
  it('normalises ids, revisions, hubs and tokens, defaulting to huggingface.co and main', () => {
    expect(checkHubModel({ baseUrl: '', repo: ' Qwen/Qwen3-0.6B ', revision: '' })).toEqual({
      baseUrl: 'https://huggingface.co',
      repo: 'Qwen/Qwen3-0.6B',
      revision: 'main',
    });
    expect(
      checkHubModel({
        baseUrl: 'http://127.0.0.1:8080/hub/',
        repo: 'a/b',
        revision: 'v1.0',
        token: ' hf_x ',
      }),
    ).toEqual({ baseUrl: 'http://127.0.0.1:8080/hub', repo: 'a/b', revision: 'v1.0', token: 'hf_x' });
    for (const { repo } of QUICK_START_MODELS)
      expect(checkHubModel({ baseUrl: '', repo, revision: '' }).repo).toBe(repo);
  });

  it('downloads through @webtune/hub once, then reads the cache (also when the hub is gone)', async () => {
    const weights = new Uint8Array(5000).map((_, i) => (i * 7) % 251);
    const server = await startHubServer({
      'test/tiny': {
        type: 'model',
        files: { 'config.json': '{}', 'tokenizer.json': '{}', 'model.safetensors': weights, 'x.bin': 'no' },
        lfs: ['model.safetensors'],
      },
      'test/gated': {
        type: 'model',
        files: { 'config.json': '{}', 'model.safetensors': weights },
        token: 'hf_t',
      },
    });
    try {
      const hub = { baseUrl: server.endpoint, repo: 'test/tiny', revision: 'main' };
      const progress: number[] = [];
      const first = await downloadHubModel(hub, (name, loaded) => {
        if (name === 'model.safetensors') progress.push(loaded);
      });
      expect([...first.files.keys()]).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
      expect(new Uint8Array(await first.files.get('model.safetensors')!.arrayBuffer())).toEqual(weights);
      expect(first.fromCache).toBe(false);
      expect(progress.at(-1)).toBe(5000);
      const fileRequests = () => server.requests.filter((r) => r.path.includes('/resolve/')).length;
      expect(fileRequests()).toBe(3);
      const again = await downloadHubModel(hub);
      expect(again).toMatchObject({ fromCache: true, offline: false });
      expect(fileRequests()).toBe(3);
      expect(await cachedHubModels()).toEqual(['test/tiny@main']);
      // The hub unreachable: the cache alone answers.
      const gone = await downloadHubModel({ ...hub, baseUrl: 'http://127.0.0.1:9' });
      expect(gone).toMatchObject({ fromCache: true, offline: true });
      // A gated model needs the token field.
      const gated = { baseUrl: server.endpoint, repo: 'test/gated', revision: 'main' };
      await expect(downloadHubModel(gated)).rejects.toThrow(/401/);
      const allowed = await downloadHubModel({ ...gated, token: 'hf_t' });
      expect(allowed.files.get('model.safetensors')?.size).toBe(5000);
    } finally {
      await server.close();
    }
  });

  it('refuses ids, revisions and hubs that are not one, naming them', () => {
    expect(() => checkHubModel({ baseUrl: '', repo: '../etc/passwd', revision: 'main' })).toThrow(
      /"..\/etc\/passwd" is not a hub model id/,
    );
    expect(() => checkHubModel({ baseUrl: '', repo: 'a/b/c', revision: 'main' })).toThrow(/owner\/name/);
    expect(() => checkHubModel({ baseUrl: '', repo: 'a/b', revision: 'x?y' })).toThrow(
      /"x\?y" is not a revision/,
    );
    expect(() => checkHubModel({ baseUrl: 'not a url', repo: 'a/b', revision: 'main' })).toThrow(
      /"not a url" is not a URL/,
    );
  });
});

describe('zip packages', () => {
  it('round-trips every file, storing large ones and deflating small ones', () => {
    const big = new Uint8Array(2 << 20).map((_, index) => (index * 31) % 251);
    const small = new TextEncoder().encode('{"r": 8}'.repeat(100));
    const archive = zipFiles([
      { name: 'model.safetensors', bytes: big },
      { name: 'sub/adapter_config.json', bytes: small },
    ]);
    const back = unzipSync(archive);
    expect(Object.keys(back).sort()).toEqual(['model.safetensors', 'sub/adapter_config.json']);
    expect(Buffer.from(back['model.safetensors']).equals(Buffer.from(big))).toBe(true);
    expect(back['sub/adapter_config.json']).toEqual(small);
    // The big file is stored: the archive is barely larger; the small one shrank.
    expect(archive.length).toBeLessThan(big.length + small.length);
    expect(archive.length).toBeGreaterThan(big.length);
  });
});
