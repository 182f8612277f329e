/* Pure helpers of the Model and Export conveniences, in Node: hub addresses and zip packages. */
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { checkHubModel, hubFolderUrl, QUICK_START_MODELS } from '../src/engine/hub-download.js';
import { zipFiles } from '../src/ui/zip.js';

describe('hub addresses', () => {
  it('builds {hub}/{repo}/resolve/{revision}/ folders, defaulting to huggingface.co and main', () => {
    expect(hubFolderUrl({ baseUrl: '', repo: 'Qwen/Qwen3-0.6B', revision: '' })).toBe(
      'https://huggingface.co/Qwen/Qwen3-0.6B/resolve/main/',
    );
    expect(hubFolderUrl({ baseUrl: 'http://127.0.0.1:8080/hub/', repo: ' a/b ', revision: 'v1.0' })).toBe(
      'http://127.0.0.1:8080/hub/a/b/resolve/v1.0/',
    );
    expect(hubFolderUrl({ baseUrl: 'https://h', repo: 'a/b', revision: 'refs/pr/1' })).toBe(
      'https://h/a/b/resolve/refs%2Fpr%2F1/',
    );
    for (const { repo } of QUICK_START_MODELS)
      expect(checkHubModel({ baseUrl: '', repo, revision: '' }).repo).toBe(repo);
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
