import type { BoardContext } from '../board.js';
import type { ExportBundleOptions, ExportedFile } from '../engine/protocol.js';
import { downloadBytes, downloadLink, field, h, numberInput, replaceChildren, select } from '../ui/dom.js';
import { formatBytes } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';
import { zipFiles } from '../ui/zip.js';

const FORMATS: [ExportBundleOptions['format'], string][] = [
  ['gguf', 'GGUF for llama.cpp and Ollama (with a Modelfile)'],
  ['merged', 'Merged model (Hugging Face safetensors)'],
  ['adapter', 'Adapter (PEFT)'],
];
const GGUF_TYPES: [ExportBundleOptions['ggufType'], string][] = [
  ['Q8_0', 'Q8_0 (8-bit)'],
  ['Q4_K_M', 'Q4_K_M (4-bit, llama.cpp’s mix)'],
  ['Q4_0', 'Q4_0 (4-bit)'],
  ['F16', 'F16'],
  ['BF16', 'BF16'],
  ['F32', 'F32'],
];

/**
 * Export as one package: the adapter, the merged model (dtype, shard size) or GGUF (type, the
 * adapter merged or kept as a GGUF LoRA file, an Ollama Modelfile), each file a link and all of
 * them one zip. GGUF is written by the same code as `webtune export --gguf` (@webtune/nn's ggufBundle).
 */
export function exportPackage(context: BoardContext): HTMLElement {
  const { engine, store } = context;
  const status = new TaskStatus('Export');
  const format = select('export-format', FORMATS, 'gguf');
  const dtype = select(
    'export-dtype',
    [
      ['BF16', 'bfloat16'],
      ['F16', 'float16'],
      ['F32', 'float32'],
    ],
    'BF16',
  );
  const shardMegabytes = numberInput('export-shard-size', 2000, { min: 1, step: 1 });
  const ggufType = select('export-gguf-type', GGUF_TYPES, 'Q8_0');
  const ggufAdapter = h('input', { type: 'checkbox', name: 'export-gguf-adapter' });
  const name = h('input', { type: 'text', name: 'export-name', value: 'webtune-model', spellcheck: false });
  const system = h('textarea', {
    name: 'export-system',
    rows: 2,
    placeholder: 'Optional SYSTEM line of the Modelfile',
  });
  const button = h('button', { type: 'button', class: 'primary', disabled: true }, 'Prepare the package');
  const links = h('ul', { class: 'downloads', 'aria-label': 'Package files' });
  const commands = h('pre', { class: 'commands', hidden: true });
  const zipButton = h('button', { type: 'button', hidden: true }, 'Download all as one zip');
  let files: ExportedFile[] = [];

  const merged = field('Safetensors dtype', dtype);
  const shards = field(
    'Largest shard (MB)',
    shardMegabytes,
    'Bigger models are split into shards with an index.',
  );
  const gguf = [
    field('GGUF type', ggufType),
    h(
      'div',
      { class: 'field' },
      h('label', {}, ggufAdapter, ' Keep the adapter as a GGUF LoRA file (unmerged base)'),
    ),
    field('Name', name, 'Of the files and of the Ollama model.'),
    field('Modelfile SYSTEM', system),
  ];
  const showFields = () => {
    merged.hidden = format.value !== 'merged';
    shards.hidden = format.value !== 'merged';
    for (const element of gguf) element.hidden = format.value !== 'gguf';
  };
  format.addEventListener('change', showFields);
  showFields();

  button.addEventListener('click', async () => {
    links.replaceChildren();
    commands.hidden = true;
    zipButton.hidden = true;
    const options: ExportBundleOptions = {
      format: format.value as ExportBundleOptions['format'],
      dtype: dtype.value as ExportBundleOptions['dtype'],
      maxShardBytes: Math.round((Number(shardMegabytes.value) || 0) * 1e6),
      ggufType: ggufType.value as ExportBundleOptions['ggufType'],
      ggufAdapter: ggufAdapter.checked,
      name: name.value,
      system: system.value,
    };
    const result = await status.run(
      'Reading the model from the GPU',
      () => engine.call({ kind: 'export-bundle', options }, status.onEvent),
      (reply) =>
        `${reply.files.length} files ready (${formatBytes(reply.files.reduce((sum, file) => sum + file.bytes.length, 0))}).`,
    );
    if (!result) return;
    files = result.files;
    replaceChildren(
      links,
      files.map((file) =>
        h('li', {}, downloadLink(file.name, file.bytes), ` (${formatBytes(file.bytes.length)})`),
      ),
    );
    zipButton.hidden = false;
    if (result.commands.length > 0) {
      commands.hidden = false;
      commands.textContent = `# in the folder of these files:\n${result.commands.join('\n')}`;
    }
  });
  zipButton.addEventListener('click', () => {
    const archive = format.value === 'gguf' ? name.value.trim() || 'model' : format.value;
    downloadBytes(`${archive}.zip`, zipFiles(files), 'application/zip');
  });
  store.subscribe((state) => {
    button.disabled = !(state.model && state.device) || state.training === 'running';
  });
  return h(
    'div',
    { class: 'card export-package' },
    h('h3', {}, 'Package'),
    h(
      'p',
      {},
      'The tuned model as one download: GGUF for llama.cpp and Ollama, a merged Hugging Face folder, or the PEFT adapter.',
    ),
    h('div', { class: 'form-grid' }, field('Format', format), merged, shards, ...gguf),
    h('div', { class: 'actions' }, button, zipButton),
    status.element,
    links,
    commands,
  );
}
