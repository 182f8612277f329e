import type { BoardContext } from '../board.js';
import { field, h, numberInput } from '../ui/dom.js';
import { TaskStatus } from '../ui/task-status.js';

/**
 * Remote: point the board at `webtune webui` and train on that machine's GPU. The Train tab's
 * settings are sent as LLaMA-Factory keys; the model and datasets are paths on the server.
 */
export function remoteTab(context: BoardContext): HTMLElement {
  const { store, remote } = context;
  const status = new TaskStatus('Connecting');
  const url = h('input', {
    type: 'url',
    name: 'remote-url',
    value: store.get().remote.url,
    autocomplete: 'url',
  });
  const useRemote = h('input', { type: 'checkbox', name: 'use-remote', disabled: true });
  const model = h('input', {
    type: 'text',
    name: 'model_name_or_path',
    spellcheck: false,
    placeholder: 'models/Qwen3-0.6B or Qwen/Qwen3-0.6B',
  });
  const dataset = h('input', {
    type: 'text',
    name: 'dataset',
    spellcheck: false,
    placeholder: 'alpaca_en_demo or data/train.jsonl',
  });
  const datasetDir = h('input', {
    type: 'text',
    name: 'dataset_dir',
    spellcheck: false,
    placeholder: 'data',
  });
  const template = h('input', {
    type: 'text',
    name: 'template',
    spellcheck: false,
    placeholder: 'as the Data tab',
  });
  const cutoffLen = numberInput('cutoff_len', Number.NaN, { min: 1, step: 1 });
  cutoffLen.value = '';
  cutoffLen.placeholder = 'as the Data tab';

  context.remoteDataConfig = () => {
    const config: Record<string, unknown> = {
      model_name_or_path: model.value.trim(),
      dataset: dataset.value.trim(),
    };
    if (datasetDir.value.trim()) config.dataset_dir = datasetDir.value.trim();
    if (template.value.trim()) config.template = template.value.trim();
    if (cutoffLen.value.trim() !== '' && Number(cutoffLen.value) > 0)
      config.cutoff_len = Number(cutoffLen.value);
    return config;
  };
  // A loaded YAML names the model and datasets as paths: on a server, they are these fields.
  context.onRunConfig((config) => {
    if (typeof config.model_name_or_path === 'string') model.value = config.model_name_or_path;
    if (config.dataset !== undefined) {
      dataset.value = Array.isArray(config.dataset) ? config.dataset.join(',') : String(config.dataset);
    }
    if (typeof config.dataset_dir === 'string') datasetDir.value = config.dataset_dir;
  });
  const runHere = h(
    'button',
    {
      type: 'button',
      disabled: true,
      onclick: () => {
        useRemote.checked = true;
        store.update({ target: 'remote' });
        context.selectTab('train');
        context.startRemoteRun();
      },
    },
    'Run the Train tab’s YAML on this server',
  );
  store.subscribe((state) => {
    runHere.disabled = !state.remote.connected || state.training === 'running';
  });

  const connect = h(
    'form',
    {
      class: 'inline-form',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        remote.url = url.value;
        const info = await status.run(
          `Connecting to ${remote.url}`,
          () => remote.info(),
          (result) => {
            const device = result.device
              ? `${result.device.vendor} ${result.device.architecture} ${result.device.description}`.trim()
              : 'no GPU';
            return (
              `Connected to ${result.name} ${result.version} on ${device}.` +
              (result.run ? ` Run ${result.run.id} is ${result.run.status}.` : '')
            );
          },
        );
        useRemote.disabled = !info;
        if (!info) useRemote.checked = false;
        store.update({
          remote: {
            url: remote.url,
            connected: Boolean(info),
            description: info ? `${info.name} ${info.version}` : '',
          },
          target: info && useRemote.checked ? 'remote' : 'browser',
        });
      },
    },
    field(
      'Server',
      url,
      'Start it with `webtune webui` (default http://127.0.0.1:7860); it serves this board too.',
    ),
    h('button', { type: 'submit' }, 'Connect'),
  );
  useRemote.addEventListener('change', () =>
    store.update({ target: useRemote.checked ? 'remote' : 'browser' }),
  );

  return h(
    'section',
    { 'aria-labelledby': 'remote-heading' },
    h('h2', { id: 'remote-heading' }, 'Remote'),
    h(
      'div',
      { class: 'card' },
      h(
        'p',
        {},
        'Drive training on another machine: the server trains on its GPU with Node.js and streams the log and the chart here.',
      ),
      connect,
      status.element,
    ),
    h(
      'form',
      { class: 'card', id: 'remote-form', onsubmit: (event: Event) => event.preventDefault() },
      h('h3', {}, 'What the server trains'),
      h(
        'div',
        { class: 'form-grid' },
        field('Model on the server', model, 'A model folder on the server, or a Hugging Face hub id.'),
        field('Datasets', dataset, 'Names in dataset_info.json or file paths, comma-separated.'),
        field('Dataset folder', datasetDir, 'Where dataset_info.json and the files are (dataset_dir).'),
        field('Chat template', template, 'Empty: the model’s own.'),
        field('cutoff_len', cutoffLen),
      ),
      h(
        'div',
        { class: 'field checkbox' },
        h('label', {}, useRemote, ' Train on this server (the Train tab’s Start button sends the run there)'),
      ),
      h(
        'p',
        { class: 'help' },
        'The server gets the run as the Train tab’s YAML shows it, with the model and datasets above.',
      ),
      h('div', { class: 'actions' }, runHere),
    ),
  );
}
