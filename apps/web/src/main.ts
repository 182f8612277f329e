import './styles.css';
import { initialState, Store } from './app-state.js';
import type { BoardContext } from './board.js';
import { EngineClient } from './engine/engine-client.js';
import type { StageName } from './engine/protocol.js';
import { PreferenceStore } from './preferences.js';
import { RemoteClient } from './remote/remote-client.js';
import { chatTab } from './tabs/chat-tab.js';
import { dataTab } from './tabs/data-tab.js';
import { evaluateTab } from './tabs/evaluate-tab.js';
import { exportTab } from './tabs/export-tab.js';
import { modelTab } from './tabs/model-tab.js';
import { remoteTab } from './tabs/remote-tab.js';
import { trainTab } from './tabs/train-tab.js';
import { noWebGpuNotice, softwareAdapterNotice } from './ui/banners.js';
import { h } from './ui/dom.js';
import { Tabs } from './ui/tabs.js';

/** Builds the board into `root`: a header with the GPU's state, the tabs, and the engine worker. */
function startBoard(root: HTMLElement): void {
  const store = new Store(initialState());
  const hasWebGpu = 'gpu' in navigator && navigator.gpu !== undefined;
  const engine = new EngineClient();
  let useDatasetsHandler: (files: Record<string, Blob>, stage: StageName) => void = () => undefined;
  let tabs: Tabs | null = null;
  const runConfigHandlers: ((config: Record<string, unknown>) => void)[] = [];
  const context: BoardContext = {
    engine,
    store,
    preferences: new PreferenceStore(),
    remote: new RemoteClient(),
    selectTab: (id) => tabs?.select(id, true),
    useDatasets: (files, stage) => {
      useDatasetsHandler(files, stage);
      tabs?.select('data', true);
    },
    onUseDatasets: (handler) => {
      useDatasetsHandler = handler;
    },
    remoteDataConfig: () => ({}),
    dataConfig: () => ({}),
    loadRunConfig: (config) => {
      for (const handler of runConfigHandlers) handler(config);
    },
    onRunConfig: (handler) => {
      runConfigHandlers.push(handler);
    },
    startRemoteRun: () => undefined,
  };

  const gpuStatus = h(
    'p',
    { class: 'gpu-status', role: 'status' },
    hasWebGpu ? 'Starting the GPU…' : 'No WebGPU',
  );
  const banner = h('div', { class: 'banner', role: 'alert', hidden: true });
  tabs = new Tabs([
    { id: 'model', label: 'Model', panel: modelTab(context) },
    { id: 'data', label: 'Data', panel: dataTab(context) },
    { id: 'train', label: 'Train', panel: trainTab(context) },
    { id: 'chat', label: 'Chat', panel: chatTab(context) },
    { id: 'evaluate', label: 'Evaluate', panel: evaluateTab(context) },
    { id: 'export', label: 'Export', panel: exportTab(context) },
    { id: 'remote', label: 'Remote', panel: remoteTab(context) },
  ]);
  root.replaceChildren(
    h('a', { class: 'skip-link', href: '#main' }, 'Skip to the board'),
    h(
      'header',
      { class: 'top' },
      h('h1', {}, 'webtune'),
      h('p', { class: 'tagline' }, 'Fine-tune language models in your browser, on your GPU.'),
      gpuStatus,
    ),
    banner,
    tabs.element,
  );

  const openRemote = () => tabs?.select('remote', true);
  const noGpu = (message: string) => {
    banner.hidden = false;
    banner.replaceChildren(...noWebGpuNotice(message, openRemote));
    gpuStatus.textContent = 'No WebGPU';
    store.update({ deviceError: message });
  };
  if (!hasWebGpu) {
    noGpu('this browser has no WebGPU (navigator.gpu is missing)');
    return;
  }
  engine
    .call({ kind: 'device' })
    .then((device) => {
      gpuStatus.textContent = `GPU: ${[device.vendor, device.architecture, device.description].filter(Boolean).join(' ') || 'unknown'} (${device.adapterClass})`;
      store.update({ device });
      const notice = softwareAdapterNotice(device, openRemote);
      if (notice) banner.after(notice);
    })
    .catch((error: Error) => noGpu(error.message));
}

startBoard(document.getElementById('app')!);
