import type { EngineEnvelope, EngineEvent, EngineMessage, EngineReplies, EngineRequest } from './protocol.js';

/** An error the engine reported, with the name it had in the worker (NoAdapterError, DataError...). */
export class EngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onEvent?: (event: EngineEvent) => void;
}

/** The page's side of the engine worker: requests as promises, with their events streamed. */
export class EngineClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor() {
    this.worker = new Worker(new URL('./engine-worker.ts', import.meta.url), {
      type: 'module',
      name: 'webtune-engine',
    });
    this.worker.onmessage = (message: MessageEvent<EngineMessage>) => this.receive(message.data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      const error = new EngineError('WorkerError', event.message || 'the engine worker failed to start');
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
    };
  }

  /** Sends a request; `onEvent` receives its progress, tokens and trainer events. */
  call<K extends EngineRequest['kind']>(
    request: Extract<EngineRequest, { kind: K }>,
    onEvent?: (event: EngineEvent) => void,
  ): Promise<EngineReplies[K]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, onEvent });
      const envelope: EngineEnvelope = { id, request };
      this.worker.postMessage(envelope);
    });
  }

  private receive(message: EngineMessage): void {
    const pending = this.pending.get(message.id);
    if (!pending) return;
    if (message.type === 'event') {
      pending.onEvent?.(message.event);
      return;
    }
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(new EngineError(message.error.name, message.error.message));
  }
}
