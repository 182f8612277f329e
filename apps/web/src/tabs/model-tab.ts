import type { BoardContext } from '../board.js';
import type { BaseStorage, ModelSummary } from '../engine/protocol.js';
import { field, h, replaceChildren, select } from '../ui/dom.js';
import { dropZone, filesOfInput, type PickedFiles, topLevelFiles } from '../ui/file-drop.js';
import { formatBytes, formatCount } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';
import { memoryPlanView } from './memory-plan-view.js';
import { quickStart } from './quick-start.js';

/** How the frozen base can be held on the GPU when a model loads. */
const BASE_STORAGE: [BaseStorage, string][] = [
  ['f32', 'float32 (exact, largest)'],
  ['bf16', 'bfloat16 (half the size)'],
  ['f16', 'float16 (half the size)'],
  ['q8_0', '8-bit Q8_0 blocks (a quarter)'],
  ['q4_0', '4-bit Q4_0 blocks (an eighth, QLoRA)'],
  ['q4_k', '4-bit Q4_K super-blocks (an eighth, as Q4_K_M GGUF)'],
];

/**
 * Model: a model from the hub in one click (cached), a Hugging Face folder (picker, drop, URL) or a
 * GGUF file; its shape, and the memory plan of a run.
 */
export function modelTab(context: BoardContext): HTMLElement {
  const { engine, store } = context;
  const status = new TaskStatus('Loading the model');
  const details = h('div', { class: 'model-details' }, h('p', { class: 'empty' }, 'No model loaded yet.'));
  const deviceDetails = h('div', { class: 'device-details' });
  const baseStorage = select('base-storage', BASE_STORAGE, 'f32');
  const baseFormat = () => baseStorage.value as BaseStorage;
  const loaded = (summary: ModelSummary) =>
    store.update({ model: summary, data: null, tuned: false, training: 'idle' });
  const quick = quickStart(context, baseFormat, loaded);
  const plan = memoryPlanView(context);

  const loadFiles = async (picked: PickedFiles) => {
    // A GGUF file is a whole model: it loads alone, read by range (never whole in memory).
    const gguf = Object.entries(picked).find(([name]) => /\.gguf$/i.test(name));
    const files = gguf ? { [gguf[0].split('/').pop() ?? gguf[0]]: gguf[1] } : topLevelFiles(picked);
    const names = Object.keys(files);
    if (!gguf && !names.includes('config.json')) {
      status.fail(
        new Error(
          `no config.json among the ${names.length} files picked: pick the model's folder, or a .gguf file`,
        ),
      );
      return;
    }
    const first = Object.keys(picked)[0];
    // Loose files: '' lets the engine use the name config.json records (never a made-up one).
    const folder = gguf ? names[0] : first?.includes('/') ? first.split('/')[0] : '';
    const summary = await status.run(
      `Loading ${folder || 'the picked files'}`,
      () =>
        engine.call(
          { kind: 'load-model', files, location: folder, baseFormat: baseFormat() },
          status.onEvent,
        ),
      (result) => `Loaded ${result.location}: ${formatCount(result.parameters)} parameters.`,
    );
    if (summary) loaded(summary);
  };

  const folderInput = h('input', {
    type: 'file',
    webkitdirectory: true,
    multiple: true,
    name: 'model-folder',
  });
  folderInput.addEventListener('change', () => loadFiles(filesOfInput(folderInput)));
  const filesInput = h('input', { type: 'file', multiple: true, name: 'model-files' });
  const ggufInput = h('input', { type: 'file', name: 'model-gguf', accept: '.gguf' });
  ggufInput.addEventListener('change', () => loadFiles(filesOfInput(ggufInput)));
  filesInput.addEventListener('change', () => loadFiles(filesOfInput(filesInput)));
  const urlInput = h('input', {
    type: 'url',
    name: 'model-url',
    placeholder: 'https://huggingface.co/<owner>/<model>/resolve/main/',
    autocomplete: 'url',
  });
  const urlForm = h(
    'form',
    {
      class: 'inline-form',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const url = urlInput.value.trim();
        if (!url) return;
        const summary = await status.run(
          `Downloading ${url}`,
          () =>
            engine.call({ kind: 'load-model-url', url: new URL(url, location.href).href }, status.onEvent),
          (result) => `Loaded ${result.location}: ${formatCount(result.parameters)} parameters.`,
        );
        if (summary) loaded(summary);
      },
    },
    field(
      'Model folder URL',
      urlInput,
      'A folder with config.json, tokenizer.json and model.safetensors (or shards).',
    ),
    h('button', { type: 'submit' }, 'Load from URL'),
  );

  const loadButton = urlForm.querySelector('button')!;
  store.subscribe((state, previous) => {
    const blocked = state.deviceError !== null || state.training === 'running';
    for (const control of [folderInput, filesInput, ggufInput, loadButton, quick.button, baseStorage])
      control.disabled = blocked;
    if (state.model !== previous.model && state.model) renderModel(details, state.model);
    if (state.device !== previous.device && state.device) {
      const info = state.device;
      replaceChildren(
        deviceDetails,
        definitionList([
          [
            'Adapter',
            `${info.vendor || 'unknown vendor'} ${info.architecture || ''} ${info.description || ''}`.trim(),
          ],
          ['Class', info.adapterClass],
          ['Largest buffer', formatBytes(info.limits.maxBufferSize ?? 0)],
          ['Largest storage binding', formatBytes(info.limits.maxStorageBufferBindingSize ?? 0)],
          ['Features', info.features.join(', ') || 'none'],
        ]),
      );
    }
  });

  return h(
    'section',
    { 'aria-labelledby': 'model-heading' },
    h('h2', { id: 'model-heading' }, 'Model'),
    field(
      'Base weights on the GPU',
      baseStorage,
      'How the frozen base is held when a model loads: 8-bit and 4-bit blocks make QLoRA; a GGUF file’s Q8_0/Q4_0 weights stay packed.',
    ),
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Load a Hugging Face model folder or a GGUF file'),
      h(
        'p',
        {},
        'Everything stays in this tab: the files are read by your browser and the model runs on your GPU.',
      ),
      h(
        'div',
        { class: 'pickers' },
        field('Model folder', folderInput, 'Pick the folder that holds config.json.'),
        field('Or its files', filesInput, 'config.json, tokenizer files and the .safetensors weights.'),
        field(
          'Or a GGUF file',
          ggufInput,
          'llama.cpp’s format (llama, mistral, qwen2, qwen3), read in pieces.',
        ),
      ),
      dropZone('Drop a model folder here', loadFiles),
      urlForm,
      status.element,
    ),
    quick.element,
    h('div', { class: 'card' }, h('h3', {}, 'Architecture'), details),
    plan.element,
    h('div', { class: 'card' }, h('h3', {}, 'GPU'), deviceDetails),
  );
}

function definitionList(rows: [string, string][]): HTMLDListElement {
  return h(
    'dl',
    { class: 'facts' },
    rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
  );
}

function renderModel(element: HTMLElement, model: ModelSummary): void {
  replaceChildren(
    element,
    definitionList([
      ['Loaded from', model.location],
      ['Architecture', `${model.architecture} (${model.modelType})`],
      ['Parameters', `${formatCount(model.parameters)} (${formatBytes(model.weightBytes)} of weights)`],
      ['Layers', String(model.layers)],
      ['Hidden size', `${model.hiddenSize} (MLP ${model.intermediateSize})`],
      ['Attention heads', `${model.attentionHeads} query, ${model.keyValueHeads} key/value`],
      ['Vocabulary', formatCount(model.vocabSize)],
      ['Context', `${formatCount(model.maxPositions)} tokens`],
      ['Embeddings', model.tiedEmbeddings ? 'tied to the output head' : 'separate from the output head'],
      [
        'Tokenizer',
        model.hasTokenizer
          ? model.hasChatTemplate
            ? 'tokenizer.json with a chat template'
            : 'tokenizer.json, no chat template'
          : 'missing',
      ],
    ]),
  );
}
