import type { DeviceInfo } from '@webtune/tensors';
import type { DataSummary, ModelSummary, StageName } from './engine/protocol.js';

/** Where training runs: this tab's GPU, or the Node machine behind `webtune webui`. */
export type RunTarget = 'browser' | 'remote';

export type TrainingStatus =
  | 'idle'
  | 'running'
  | 'pausing'
  | 'paused'
  | 'stopping'
  | 'stopped'
  | 'completed'
  | 'failed';

/** What several tabs read; each tab keeps its own form state. */
export interface AppState {
  device: DeviceInfo | null;
  /** Why there is no device (no WebGPU, no adapter). */
  deviceError: string | null;
  model: ModelSummary | null;
  data: DataSummary | null;
  training: TrainingStatus;
  /** A run finished or paused with a step done: the tuned model differs from the base. */
  tuned: boolean;
  remote: { url: string; connected: boolean; description: string };
  target: RunTarget;
  /** The training stage, chosen in the Data tab (it decides which rows are valid); Train mirrors it. */
  stage: StageName;
}

type Listener = (state: AppState, previous: AppState) => void;

/** A tiny observable store: tabs subscribe and re-render what depends on the changed fields. */
export class Store {
  private state: AppState;
  private readonly listeners = new Set<Listener>();

  constructor(initial: AppState) {
    this.state = initial;
  }

  get(): AppState {
    return this.state;
  }

  update(changes: Partial<AppState>): void {
    const previous = this.state;
    this.state = { ...previous, ...changes };
    for (const listener of this.listeners) listener(this.state, previous);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function initialState(): AppState {
  return {
    device: null,
    deviceError: null,
    model: null,
    data: null,
    training: 'idle',
    tuned: false,
    remote: { url: 'http://127.0.0.1:7860', connected: false, description: '' },
    target: 'browser',
    stage: 'sft',
  };
}
