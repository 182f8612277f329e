import type { Store } from './app-state.js';
import type { EngineClient } from './engine/engine-client.js';
import type { StageName } from './engine/protocol.js';
import type { PreferenceStore } from './preferences.js';
import type { RemoteClient } from './remote/remote-client.js';

/** What every tab gets: the engine, the shared state, and a few cross-tab actions. */
export interface BoardContext {
  engine: EngineClient;
  store: Store;
  preferences: PreferenceStore;
  remote: RemoteClient;
  /** Shows a tab. */
  selectTab(id: string): void;
  /** Puts datasets into the Data tab (the A/B votes as DPO data) and shows it. */
  useDatasets(files: Record<string, Blob>, stage: StageName): void;
  /** Called by the Data tab to register how `useDatasets` fills it. */
  onUseDatasets(handler: (files: Record<string, Blob>, stage: StageName) => void): void;
  /** Model and datasets of a remote run as LLaMA-Factory keys; the Remote tab provides it. */
  remoteDataConfig: () => Record<string, unknown>;
  // The run as one LLaMA-Factory config (run-config.ts): each tab owns some of its keys.
  /** The Data tab's keys (stage, template, cutoff_len, val_size, max_samples); the Data tab provides it. */
  dataConfig: () => Record<string, unknown>;
  /** Hands a loaded YAML config to every tab that registered for its keys. */
  loadRunConfig(config: Record<string, unknown>): void;
  /** Registers a tab's part of `loadRunConfig`. */
  onRunConfig(handler: (config: Record<string, unknown>) => void): void;
  /** Starts the Train tab's run on the connected server (the Remote tab's button); the Train tab provides it. */
  startRemoteRun: () => void;
}
