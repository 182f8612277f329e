import type { DeviceInfo } from '@webtune/tensors';
import type { TrainerEvent } from '@webtune/train';

/*
 * The client of `webtune webui`'s HTTP API (docs/guide/web.md, "Remote mode"): JSON requests under
 * /api, and a run's events as Server-Sent Events.
 */

/** GET /api/info */
export interface RemoteInfo {
  name: string;
  version: string;
  device: DeviceInfo | null;
  run: { id: string; status: RemoteRunStatus } | null;
}

export type RemoteRunStatus = 'running' | 'completed' | 'stopped' | 'failed';

/** The `end` event of a run. */
export interface RemoteRunEnd {
  status: Exclude<RemoteRunStatus, 'running'>;
  error?: string;
}

export interface RemoteRunHandlers {
  onTrainerEvent(event: TrainerEvent): void;
  onLog(line: string): void;
  onEnd(end: RemoteRunEnd): void;
  /** The stream broke and could not reconnect. */
  onError(message: string): void;
}

export class RemoteError extends Error {
  override name = 'RemoteError';
}

export class RemoteClient {
  private base = '';

  /** The server's address, e.g. http://127.0.0.1:7860 (trailing slashes ignored). */
  get url(): string {
    return this.base;
  }

  set url(value: string) {
    this.base = value.trim().replace(/\/+$/, '');
  }

  async info(): Promise<RemoteInfo> {
    return this.request<RemoteInfo>('GET', '/api/info');
  }

  /** Starts a run from a LLaMA-Factory-style config (snake_case keys, as in a training YAML). */
  async startRun(config: Record<string, unknown>): Promise<{ id: string }> {
    return this.request('POST', '/api/runs', { config });
  }

  /** Asks the run to stop at the next step boundary (it saves a checkpoint). */
  async stopRun(id: string): Promise<void> {
    await this.request('POST', `/api/runs/${encodeURIComponent(id)}/stop`, {});
  }

  /**
   * Follows a run's events from its start (the server replays what happened before). Returns a
   * function that closes the stream. EventSource reconnects by itself with Last-Event-ID.
   */
  follow(id: string, handlers: RemoteRunHandlers): () => void {
    const source = new EventSource(`${this.base}/api/runs/${encodeURIComponent(id)}/events`);
    let ended = false;
    const parse = (event: MessageEvent) => JSON.parse(event.data as string) as unknown;
    source.addEventListener('trainer', (event) =>
      handlers.onTrainerEvent(parse(event as MessageEvent) as TrainerEvent),
    );
    source.addEventListener('log', (event) =>
      handlers.onLog((parse(event as MessageEvent) as { line: string }).line),
    );
    source.addEventListener('end', (event) => {
      ended = true;
      source.close();
      handlers.onEnd(parse(event as MessageEvent) as RemoteRunEnd);
    });
    source.onerror = () => {
      if (ended) return;
      if (source.readyState === EventSource.CLOSED) handlers.onError(`lost the event stream of run ${id}`);
    };
    return () => {
      ended = true;
      source.close();
    };
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    if (!this.base) throw new RemoteError('no server address: enter the URL of `webtune webui`');
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      const crossOrigin = new URL(this.base).origin !== location.origin;
      throw new RemoteError(
        `could not reach ${this.base} (${(error as Error).message}). Is \`webtune webui\` running there?` +
          (crossOrigin
            ? ` This page is not served by it: start it with \`webtune webui --allow-origin ${location.origin}\`, or open the board it serves.`
            : ''),
      );
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new RemoteError(`${method} ${path}: the server answered with something that is not JSON`);
    }
    if (!response.ok) {
      const message = (json as { error?: string } | null)?.error ?? `HTTP ${response.status}`;
      throw new RemoteError(`${method} ${path}: ${message}`);
    }
    return json as T;
  }
}
