import type { BoardContext } from '../board.js';
import type { AdapterSource } from '../engine/protocol.js';
import { downloadBytes, field, h } from './dom.js';
import { filesOfInput } from './file-drop.js';
import { TaskStatus } from './task-status.js';
import { zipFiles } from './zip.js';

/** Sent on window when the tuned model's adapter changed, so every picker shows the same choice. */
const CHANGED = 'webtune:adapter-changed';

/**
 * The tuned model's adapter, for Chat, Evaluate and Export: the last training run, a checkpoint of
 * any run kept in this browser (OPFS), an uploaded PEFT adapter folder, or none (the base). The
 * chosen checkpoint downloads as a zip.
 */
export function adapterPicker(context: BoardContext, where: string): HTMLElement {
  const { engine, store } = context;
  const status = new TaskStatus('Adapter');
  const choice = h('select', { name: `${where}-adapter` });
  const upload = h('input', { type: 'file', multiple: true, name: `${where}-adapter-upload` });
  const download = h('button', { type: 'button', disabled: true }, 'Download this checkpoint (zip)');

  const refresh = async () => {
    if (!store.get().model) return;
    try {
      const { runs, current: active } = await engine.call({ kind: 'list-adapters' });
      const options: [string, string][] = [['none', 'None: the base model']];
      if (active !== 'none' && !active.includes('/')) options.push(['current', `Current: ${active}`]);
      for (const run of runs) {
        for (const checkpoint of run.checkpoints) {
          options.push([`checkpoint:${run.runName}/${checkpoint}`, `${run.runName} / ${checkpoint}`]);
        }
      }
      choice.replaceChildren(...options.map(([value, label]) => h('option', { value }, label)));
      const selected =
        active === 'none'
          ? 'none'
          : active.includes('/') && !active.startsWith('uploaded')
            ? `checkpoint:${active}`
            : 'current';
      choice.value = options.some(([value]) => value === selected)
        ? selected
        : options[options.length > 1 ? 1 : 0][0];
      download.disabled = !choice.value.startsWith('checkpoint:');
    } catch (error) {
      status.fail(error);
    }
  };

  const use = async (source: AdapterSource) => {
    const result = await status.run(
      'Putting the adapter on the base model',
      () => engine.call({ kind: 'use-adapter', source }, status.onEvent),
      (reply) =>
        reply.current === 'none' ? 'The tuned model is the base model.' : `Tuned model: ${reply.current}.`,
    );
    if (result) {
      store.update({ tuned: result.current !== 'none' });
      window.dispatchEvent(new CustomEvent(CHANGED));
    }
  };

  choice.addEventListener('change', () => {
    download.disabled = !choice.value.startsWith('checkpoint:');
    if (choice.value === 'none') use({ kind: 'none' });
    else if (choice.value.startsWith('checkpoint:')) {
      const [runName, checkpoint] = choice.value.slice('checkpoint:'.length).split('/');
      use({ kind: 'checkpoint', runName, checkpoint });
    }
  });
  upload.addEventListener('change', () => {
    const files = filesOfInput(upload);
    const first = Object.keys(files)[0] ?? 'adapter';
    use({ kind: 'upload', name: first.includes('/') ? first.split('/')[0] : 'adapter', files });
    upload.value = '';
  });
  download.addEventListener('click', async () => {
    const [runName, checkpoint] = choice.value.slice('checkpoint:'.length).split('/');
    const result = await status.run(
      `Reading ${checkpoint} from this browser`,
      () => engine.call({ kind: 'checkpoint-files', runName, checkpoint }),
      (reply) => `${reply.files.length} files in ${runName}-${checkpoint}.zip.`,
    );
    if (result) downloadBytes(`${runName}-${checkpoint}.zip`, zipFiles(result.files), 'application/zip');
  });
  window.addEventListener(CHANGED, refresh);
  store.subscribe((state, previous) => {
    const ready = Boolean(state.model && state.device) && state.training !== 'running';
    choice.disabled = !ready;
    upload.disabled = !ready;
    if (
      state.model !== previous.model ||
      (state.training !== previous.training && state.training !== 'running')
    ) {
      refresh();
    }
  });
  return h(
    'div',
    { class: 'adapter-picker' },
    h(
      'div',
      { class: 'form-grid' },
      field('Tuned model', choice, 'The adapter Chat, Evaluate and Export use.'),
      field(
        'Upload a PEFT adapter',
        upload,
        'Its adapter_config.json and adapter_model.safetensors (pick both).',
      ),
    ),
    h('div', { class: 'actions' }, download),
    status.element,
  );
}
