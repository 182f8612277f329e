import type { BoardContext } from '../board.js';
import type { ExportedFile } from '../engine/protocol.js';
import { adapterPicker } from '../ui/adapter-picker.js';
import { downloadLink, h, replaceChildren } from '../ui/dom.js';
import { formatBytes } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';
import { exportPackage } from './export-package.js';

const TYPES: Record<string, string> = { json: 'application/json', safetensors: 'application/octet-stream' };

/** Export: the adapter as Hugging Face PEFT files, or the merged model as a Hugging Face folder. */
export function exportTab(context: BoardContext): HTMLElement {
  const { engine, store } = context;
  const block = (what: 'adapter' | 'merged', title: string, description: string) => {
    const status = new TaskStatus(title);
    const links = h('ul', { class: 'downloads', 'aria-label': `${title} files` });
    const button = h(
      'button',
      { type: 'button', disabled: true },
      what === 'adapter' ? 'Prepare the adapter files' : 'Prepare the merged model',
    );
    button.addEventListener('click', async () => {
      links.replaceChildren();
      const result = await status.run(
        what === 'adapter'
          ? 'Reading the adapter from the GPU'
          : 'Merging and reading the model from the GPU',
        () => engine.call({ kind: 'export', what }, status.onEvent),
        (value) => `${value.files.length} files ready: download each below.`,
      );
      if (result)
        replaceChildren(
          links,
          result.files.map((file) => h('li', {}, linkFor(file), ` (${formatBytes(file.bytes.length)})`)),
        );
    });
    return {
      element: h(
        'div',
        { class: 'card' },
        h('h3', {}, title),
        h('p', {}, description),
        h('div', { class: 'actions' }, button),
        status.element,
        links,
      ),
      button,
    };
  };
  const adapter = block(
    'adapter',
    'Adapter (PEFT)',
    'adapter_config.json and adapter_model.safetensors, as Hugging Face PEFT writes them: load them with PeftModel.from_pretrained, LLaMA-Factory, or webtune.',
  );
  const merged = block(
    'merged',
    'Merged model',
    'The base model with the adapter folded into its weights, as a Hugging Face folder (config.json, model.safetensors, tokenizer files).',
  );
  store.subscribe((state) => {
    const ready = Boolean(state.model && state.device) && state.training !== 'running';
    adapter.button.disabled = !ready || !state.tuned;
    merged.button.disabled = !ready;
  });
  return h(
    'section',
    { 'aria-labelledby': 'export-heading' },
    h('h2', { id: 'export-heading' }, 'Export'),
    adapter.element,
    merged.element,
    exportPackage(context),
    h('div', { class: 'card' }, h('h3', {}, 'Which adapter'), adapterPicker(context, 'export')),
  );
}

function linkFor(file: ExportedFile): HTMLAnchorElement {
  const extension = file.name.split('.').pop() ?? '';
  return downloadLink(file.name, file.bytes, TYPES[extension]);
}
