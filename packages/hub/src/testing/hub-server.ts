/**
 * A local HTTP server in the hub's URL layout, for tests: the revision API
 * (`/api/{models|datasets}/{repo}/revision/{rev}`), `/{repo}/resolve/{rev}/{path}` and
 * `/datasets/{repo}/resolve/{rev}/{path}`, with Range requests, tokens for private repositories,
 * and responses cut short on purpose. It answers cross-origin requests as the hub does (CORS), so a
 * page served from another port can download from it.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedRepo {
  type: 'model' | 'dataset';
  files: Record<string, Uint8Array | string>;
  /** Files stored with LFS (listed with their sha256); the others get a git blob id. */
  lfs?: string[];
  /** Requests without `Authorization: Bearer <token>` get 401. */
  token?: string;
}

export interface HubServer {
  endpoint: string;
  /** Every request seen: method, path and headers. */
  requests: { path: string; headers: IncomingHttpHeaders }[];
  /** Cut the next response of a path after this many bytes (then the connection drops). */
  cutNext: Map<string, number>;
  /** The commit every repository is at. */
  commit: string;
  close(): Promise<void>;
}

const bytesOf = (content: Uint8Array | string) =>
  typeof content === 'string' ? new TextEncoder().encode(content) : content;

/** The blob id huggingface_hub names a cached file by: the LFS sha256, else the git blob sha1. */
export function blobIdOf(content: Uint8Array | string, lfs: boolean): string {
  const bytes = bytesOf(content);
  if (lfs) return createHash('sha256').update(bytes).digest('hex');
  return createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');
}

export async function startHubServer(repos: Record<string, ServedRepo>): Promise<HubServer> {
  const commit = 'c0ffee'.padEnd(40, '0');
  const requests: HubServer['requests'] = [];
  const cutNext = new Map<string, number>();
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname);
    requests.push({ path, headers: request.headers });
    response.setHeader('access-control-allow-origin', '*');
    response.setHeader('access-control-expose-headers', 'content-length, content-range, etag');
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        'access-control-allow-headers': 'authorization, range',
        'access-control-allow-methods': 'GET, HEAD',
      });
      response.end();
      return;
    }
    const api = /^\/api\/(models|datasets)\/(.+)\/revision\/([^/]+)$/.exec(path);
    const resolved = /^\/(datasets\/)?(.+?\/.+?)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoId = api ? api[2] : resolved?.[2];
    const repo = repoId ? repos[repoId] : undefined;
    const type = api ? api[1].slice(0, -1) : resolved?.[1] ? 'dataset' : 'model';
    if (!repo || repo.type !== type) {
      response.writeHead(404).end('Repository not found');
      return;
    }
    if (repo.token && request.headers.authorization !== `Bearer ${repo.token}`) {
      response.writeHead(401).end('Invalid credentials');
      return;
    }
    if (api) {
      const siblings = Object.entries(repo.files).map(([rfilename, content]) => {
        const lfs = repo.lfs?.includes(rfilename) ?? false;
        const size = bytesOf(content).byteLength;
        return {
          rfilename,
          blobId: blobIdOf(content, false),
          size,
          ...(lfs ? { lfs: { sha256: blobIdOf(content, true), size, pointerSize: 134 } } : {}),
        };
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ id: repoId, sha: commit, siblings }));
      return;
    }
    const content = repo.files[resolved![4]];
    if (content === undefined) {
      response.writeHead(404).end('Entry not found');
      return;
    }
    const bytes = bytesOf(content);
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start > bytes.byteLength) {
      response.writeHead(416).end();
      return;
    }
    const body = bytes.subarray(start);
    response.writeHead(range ? 206 : 200, {
      'content-length': String(body.byteLength),
      ...(range ? { 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` } : {}),
    });
    const cut = cutNext.get(path);
    if (cut !== undefined) {
      cutNext.delete(path);
      // The connection is reset a while after the bytes were written: a client that errors its body
      // stream drops chunks it has not read yet, so the pause gives a loaded machine time to read them.
      response.write(body.subarray(0, cut), () => setTimeout(() => response.socket?.destroy(), 200));
      return;
    }
    response.end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    cutNext,
    commit,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
