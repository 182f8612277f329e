/**
 * What both local servers (`serve`, `webui`) check on every request before routing it, so that only
 * their user can drive them:
 *
 * - Host allow-list (DNS rebinding): a page on evil.example whose name is made to resolve to
 *   127.0.0.1 still sends `Host: evil.example`. Allowed: loopback names (`localhost`, `*.localhost`,
 *   127.0.0.1, ::1), IP literals (a rebound name never arrives as one), the `--host` name, and the
 *   `--allow-host` names (`*`: any, for a reverse proxy that checks hosts itself).
 * - Origin allow-list (cross-site requests): a browser names the page's origin on cross-origin
 *   requests and on every POST; only the server's own origin and `--allow-origin` ones pass.
 *   Clients that are not browsers (curl, SDKs) send no Origin.
 * - CORS for allowed origins, preflights (OPTIONS) answered with the allowed methods and headers.
 * - A token, when one is required (`webui` bound beyond loopback): `Authorization: Bearer`, the
 *   `webtune_token` cookie, or `?token=` (which sets the cookie, as Jupyter does).
 * - Request bodies only as `Content-Type: application/json`.
 * - Limits: header bytes, header and request timeouts, open connections (SERVER_LIMITS).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

/** The limits both servers apply (documented in their --help). */
export const SERVER_LIMITS = {
  /** Largest request head (request line and headers); over it Node answers 431. */
  maxHeaderBytes: 16 * 1024,
  /** Time to receive the request head. */
  headersTimeoutMs: 10_000,
  /** Time to receive the whole request (head and body; not the response). */
  requestTimeoutMs: 60_000,
  /** Connections open at once; more are refused until one closes. */
  maxConnections: 128,
} as const;

/** Server options with the limits (pass to createServer). */
export const SERVER_OPTIONS = {
  maxHeaderSize: SERVER_LIMITS.maxHeaderBytes,
  headersTimeout: SERVER_LIMITS.headersTimeoutMs,
  requestTimeout: SERVER_LIMITS.requestTimeoutMs,
};

/** Applies the connection limit to a created server. */
export function applyServerLimits(server: Server): Server {
  server.maxConnections = SERVER_LIMITS.maxConnections;
  return server;
}

/** A request refused before routing: its status and a message saying what to do. */
export class GuardError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface HttpGuardOptions {
  /** The address the server binds (`--host`): a name there is allowed as Host. */
  bindHost: string;
  /** More Host names to answer to (`--allow-host`); `*` allows any. */
  allowHosts?: readonly string[];
  /** Origins whose pages may call the API (`--allow-origin`), e.g. `http://localhost:5173`. */
  allowOrigins?: readonly string[];
  /** Requests must carry this token (Bearer, cookie or ?token=); null: no token. */
  token?: string | null;
  /** Request headers a cross-origin page may send (CORS). */
  allowHeaders?: string;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);
const TOKEN_COOKIE = 'webtune_token';

/** Whether an address or name is this machine only. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return LOOPBACK_NAMES.has(name) || name.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** The host name of a Host header (`name:port`, `[::1]:port`), lowercased; null when malformed. */
export function hostName(header: string | undefined): string | null {
  if (!header || /[\s/@?#\\]/.test(header)) return null;
  try {
    const url = new URL(`http://${header}`);
    return url.hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, '')
      .replace(/\.$/, '');
  } catch {
    return null;
  }
}

export class HttpGuard {
  readonly #hosts: Set<string>;
  readonly #anyHost: boolean;
  readonly #origins: Set<string>;
  readonly #token: Buffer | null;
  readonly #allowHeaders: string;

  constructor(options: HttpGuardOptions) {
    const bind = options.bindHost.toLowerCase().replace(/^\[|\]$/g, '');
    this.#hosts = new Set((options.allowHosts ?? []).map((host) => host.toLowerCase()));
    if (bind !== '0.0.0.0' && bind !== '::' && bind !== '') this.#hosts.add(bind);
    this.#anyHost = this.#hosts.has('*');
    this.#origins = new Set(options.allowOrigins ?? []);
    this.#token = options.token ? Buffer.from(options.token) : null;
    this.#allowHeaders = options.allowHeaders ?? 'Authorization, Content-Type';
  }

  /** Whether requests need the token. */
  get requiresToken(): boolean {
    return this.#token !== null;
  }

  /**
   * Checks a request (Host, Origin, token) and sets the CORS headers of an allowed cross-origin
   * one. Returns true when the request was a preflight and has been answered; throws GuardError.
   */
  check(request: IncomingMessage, response: ServerResponse, url: URL): boolean {
    const host = hostName(request.headers.host);
    if (host === null) throw new GuardError(400, 'the request has no valid Host header', 'bad_host');
    if (!this.#anyHost && !isLoopbackHost(host) && isIP(host) === 0 && !this.#hosts.has(host)) {
      throw new GuardError(
        403,
        `host "${host}" is not served here (a DNS-rebinding guard); start the server with --allow-host ${host} to answer to it`,
        'host_not_allowed',
      );
    }
    const origin = request.headers.origin;
    if (origin !== undefined) {
      const sameOrigin = origin === `http://${request.headers.host}`;
      if (this.#origins.has(origin)) {
        response.setHeader('Access-Control-Allow-Origin', origin);
        response.setHeader('Vary', 'Origin');
        response.setHeader('Access-Control-Allow-Credentials', 'true');
      } else if (!sameOrigin) {
        throw new GuardError(
          403,
          `origin ${origin} may not use this server (start it with --allow-origin ${origin} to let its pages in)`,
          'origin_not_allowed',
        );
      }
    }
    if (request.method === 'OPTIONS') {
      // A preflight: allowed origins learn what they may send; the token is not asked for here
      // (browsers send preflights without credentials).
      response.writeHead(204, {
        Allow: 'GET, POST, OPTIONS',
        ...(origin !== undefined
          ? {
              'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
              'Access-Control-Allow-Headers': `${this.#allowHeaders}, Last-Event-ID`,
              'Access-Control-Max-Age': '600',
            }
          : {}),
      });
      response.end();
      return true;
    }
    if (this.#token) this.#checkToken(request, response, url);
    return false;
  }

  #checkToken(request: IncomingMessage, response: ServerResponse, url: URL): void {
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')?.[1]?.trim();
    const cookie = (request.headers.cookie ?? '')
      .split(';')
      .map((part) => part.trim().split('='))
      .find(([name]) => name === TOKEN_COOKIE)?.[1];
    const query = url.searchParams.get('token') ?? undefined;
    if (query !== undefined && this.#matches(query)) {
      // The printed URL carries the token once; the page's later requests send the cookie.
      response.setHeader(
        'Set-Cookie',
        `${TOKEN_COOKIE}=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/`,
      );
      return;
    }
    if (bearer !== undefined && this.#matches(bearer)) return;
    if (cookie !== undefined && this.#matches(decodeCookie(cookie))) return;
    throw new GuardError(
      401,
      'a token is required: open the URL with ?token=... that the server printed, or send "Authorization: Bearer <token>"',
      'token_required',
    );
  }

  #matches(given: string): boolean {
    const bytes = Buffer.from(given);
    return this.#token !== null && bytes.length === this.#token.length && timingSafeEqual(bytes, this.#token);
  }
}

function decodeCookie(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The URL of a request, its target read as a path on this server: `//evil/x` is the path
 * `//evil/x`, not a URL of another host (which `new URL(target, base)` makes of it, or throws).
 * Null when it cannot be read (the caller answers 400).
 */
export function requestUrl(request: IncomingMessage): URL | null {
  const target = request.url ?? '/';
  if (!target.startsWith('/')) return null;
  try {
    return new URL(`http://localhost${target}`);
  } catch {
    return null;
  }
}

/** Refuses a body that is not declared as JSON (415): a browser cannot send one cross-site unpreflighted. */
export function requireJsonBody(request: IncomingMessage): void {
  if (!/^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '')) {
    throw new GuardError(
      415,
      `send the request body as Content-Type: application/json (got ${JSON.stringify(request.headers['content-type'] ?? null)})`,
      'unsupported_media_type',
    );
  }
}

/**
 * Calls `write` once the exchange is over with an access-log line: method, path, status and time.
 * A client that left before the answer was complete is logged as such (499 when nothing was sent,
 * else the status sent and `aborted`), never as a plain 200.
 */
export function logWhenDone(
  request: IncomingMessage,
  response: ServerResponse,
  pathname: string,
  write: ((line: string) => void) | undefined,
): void {
  if (!write) return;
  const started = Date.now();
  response.once('close', () => {
    const status = response.writableFinished
      ? String(response.statusCode)
      : `${response.headersSent ? response.statusCode : 499} aborted by the client`;
    write(`${request.method} ${pathname} ${status} ${Date.now() - started}ms`);
  });
}
