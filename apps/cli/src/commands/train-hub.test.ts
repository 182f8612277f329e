import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, REPO_ROOT, webtune } from '../testing/run-cli.js';

const STORIES = 'models/stories260K-hf';
const PARQUET = join(REPO_ROOT, 'packages/data/src/readers/__fixtures__/sharegpt.parquet');
const COMMIT = 'ab'.repeat(20);

/** A hub in its URL layout: the revision API and resolve URLs for one model and one dataset. */
function hubServer(
  repos: Record<string, { type: 'models' | 'datasets'; files: Record<string, string> }>,
): Server {
  return createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://h').pathname);
    const api = /^\/api\/(models|datasets)\/(.+)\/revision\/main$/.exec(path);
    const file = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/[0-9a-f]{40}\/(.+)$/.exec(path);
    const repo = repos[api?.[2] ?? file?.[2] ?? ''];
    if (api && repo?.type === api[1]) {
      const siblings = Object.entries(repo.files).map(([rfilename, local]) => {
        const bytes = readFileSync(local);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        return { rfilename, blobId: sha256.slice(0, 40), lfs: { sha256, size: bytes.byteLength } };
      });
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ sha: COMMIT, siblings }));
    } else if (file && repo?.files[file[3]] && (repo.type === 'datasets') === (file[1] !== undefined)) {
      response.writeHead(200).end(readFileSync(repo.files[file[3]]));
    } else response.writeHead(404).end();
  });
}

describe.skipIf(!requireFixtures(STORIES))(
  'webtune train: a hub model and a hub dataset (hf_hub_url)',
  () => {
    let folder: string;
    let server: Server;
    let endpoint: string;
    beforeAll(async () => {
      folder = mkdtempSync(join(tmpdir(), 'webtune-cli-hub-'));
      const model = fixturePath(STORIES);
      const modelFiles = Object.fromEntries(readdirSync(model).map((name) => [name, join(model, name)]));
      server = hubServer({
        'tiny/stories': { type: 'models', files: modelFiles },
        'tiny/numbers': {
          type: 'datasets',
          files: { 'data/train-00000-of-00001.parquet': PARQUET, 'README.md': join(model, 'config.json') },
        },
      });
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      writeFileSync(join(folder, 'config.yaml'), 'stage: sft\ndo_train: true\n');
      writeFileSync(
        join(folder, 'dataset_info.json'),
        JSON.stringify({
          numbers: { hf_hub_url: 'tiny/numbers', formatting: 'sharegpt' },
          modelscope: { ms_hub_url: 'AI-ModelScope/numbers' },
        }),
      );
    });
    afterAll(() => {
      server?.closeAllConnections();
      server?.close();
      rmSync(folder, { recursive: true, force: true });
    });

    const train = (dataset: string, env: Record<string, string>, extra = ['max_steps=1']) =>
      webtune(
        [
          'train',
          join(folder, 'config.yaml'),
          'model_name_or_path=tiny/stories',
          `dataset=${dataset}`,
          `dataset_dir=${folder}`,
          'stage=sft',
          'finetuning_type=lora',
          'template=default',
          'cutoff_len=64',
          ...extra,
          'per_device_train_batch_size=2',
          `output_dir=${join(folder, 'out')}`,
          'overwrite_output_dir=true',
        ],
        { env: { HF_HUB_CACHE: join(folder, 'cache'), HF_ENDPOINT: endpoint, ...env } },
      );

    it('downloads both into the Hugging Face cache, trains, then trains again offline from the cache', async () => {
      const online = await train('numbers', {});
      expect(errorLines(online.stderr)).toEqual([]);
      expect(online.code).toBe(0);
      const cache = join(folder, 'cache');
      expect(readFileSync(join(cache, 'models--tiny--stories', 'refs', 'main'), 'utf8')).toBe(COMMIT);
      expect(
        existsSync(
          join(cache, 'datasets--tiny--numbers', 'snapshots', COMMIT, 'data', 'train-00000-of-00001.parquet'),
        ),
      ).toBe(true);
      expect(existsSync(join(cache, 'datasets--tiny--numbers', 'snapshots', COMMIT, 'README.md'))).toBe(
        false,
      );
      expect(readFileSync(join(folder, 'out', 'trainer_log.jsonl'), 'utf8')).toMatch(/"loss"/);
      // Offline, with the hub gone: the same run reads the cache.
      const offline = await train('numbers', { HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' });
      expect(errorLines(offline.stderr)).toEqual([]);
      expect(offline.code).toBe(0);
      // streaming: true reads the cached parquet lazily, a row group at a time.
      const streamed = await train('numbers', { HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' }, [
        'streaming=true',
        'buffer_size=4',
        'max_steps=2',
        'logging_steps=1',
      ]);
      expect(errorLines(streamed.stderr)).toEqual([]);
      expect(streamed.code).toBe(0);
      expect(streamed.stdout).toMatch(/streaming numbers \(buffer_size 4, concat\)/);
      expect(
        readFileSync(join(folder, 'out', 'trainer_log.jsonl'), 'utf8')
          .trim()
          .split('\n'),
      ).toHaveLength(2);
    });

    it('refuses a ModelScope dataset with the reason', async () => {
      const result = await train('modelscope', {});
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/ModelScope dataset AI-ModelScope\/numbers/);
    });
  },
);
