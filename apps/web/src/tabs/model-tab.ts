import type { BoardContext } from '../board.js';
import type { MemoryEstimate, ModelSummary } from '../engine/protocol.js';
import { field, h, numberInput, replaceChildren, select } from '../ui/dom.js';
import { dropZone, filesOfInput, type PickedFiles, topLevelFiles } from '../ui/file-drop.js';
import { formatBytes, formatCount } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';
import { METHOD_LABELS, type MethodName, methodConfig } from './train-settings.js';

/** Model: load a Hugging Face folder (picker, drop, URL); its shape and what training will need. */
export function modelTab(context: BoardContext): HTMLElement {
  const { engine, store } = context;
  const status = new TaskStatus('Loading the model');
  const details = h('div', { class: 'model-details' }, h('p', { class: 'empty' }, 'No model loaded yet.'));
  const memory = h('div', { class: 'memory-estimate' });
  const deviceDetails = h('div', { class: 'device-details' });

  const loadFiles = async (picked: PickedFiles) => {
    const files = topLevelFiles(picked);
    const names = Object.keys(files);
    if (!names.includes('config.json')) {
      status.fail(
        new Error(`no config.json among the ${names.length} files picked: pick the model's folder`),
      );
      return;
    }
    const first = Object.keys(picked)[0];
    // Loose files: '' lets the engine use the name config.json records (never a made-up one).
    const folder = first?.includes('/') ? first.split('/')[0] : '';
    const summary = await status.run(
      `Loading ${folder || 'the picked files'}`,
      () => engine.call({ kind: 'load-model', files, location: folder }, status.onEvent),
      (result) => `Loaded ${result.location}: ${formatCount(result.parameters)} parameters.`,
    );
    if (summary) store.update({ model: summary, data: null, tuned: false, training: 'idle' });
  };

  const folderInput = h('input', {
    type: 'file',
    webkitdirectory: true,
    multiple: true,
    name: 'model-folder',
  });
  folderInput.addEventListener('change', () => loadFiles(filesOfInput(folderInput)));
  const filesInput = h('input', { type: 'file', multiple: true, name: 'model-files' });
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
        if (summary) store.update({ model: summary, data: null, tuned: false, training: 'idle' });
      },
    },
    field(
      'Model folder URL',
      urlInput,
      'A folder with config.json, tokenizer.json and model.safetensors (or shards).',
    ),
    h('button', { type: 'submit' }, 'Load from URL'),
  );

  const methodSelect = select('estimate-method', Object.entries(METHOD_LABELS) as [string, string][], 'lora');
  const batchInput = numberInput('estimate-batch', 2, { min: 1, step: 1 });
  const sequenceInput = numberInput('estimate-sequence', 512, { min: 1, step: 1 });
  const estimate = async () => {
    if (!store.get().model) return;
    try {
      const result = await engine.call({
        kind: 'estimate-memory',
        config: methodConfig(methodSelect.value as MethodName),
        batchSize: Number(batchInput.value) || 1,
        sequenceLength: Number(sequenceInput.value) || 1,
      });
      renderMemory(memory, result, store.get().model!);
    } catch (error) {
      replaceChildren(memory, h('p', { class: 'error' }, (error as Error).message));
    }
  };
  for (const control of [methodSelect, batchInput, sequenceInput])
    control.addEventListener('change', estimate);

  const loadButton = urlForm.querySelector('button')!;
  store.subscribe((state, previous) => {
    const blocked = state.deviceError !== null || state.training === 'running';
    for (const control of [folderInput, filesInput, loadButton]) control.disabled = blocked;
    if (state.model !== previous.model) {
      if (state.model) renderModel(details, state.model);
      estimate();
    }
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
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Load a Hugging Face model folder'),
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
      ),
      dropZone('Drop a model folder here', loadFiles),
      urlForm,
      status.element,
    ),
    h('div', { class: 'card' }, h('h3', {}, 'Architecture'), details),
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Memory for training'),
      h(
        'div',
        { class: 'form-grid' },
        field('Method', methodSelect),
        field('Batch size', batchInput),
        field('Sequence length', sequenceInput),
      ),
      memory,
    ),
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

function renderMemory(element: HTMLElement, estimate: MemoryEstimate, model: ModelSummary): void {
  const { summary, activationBytes, limits } = estimate;
  const total = summary.totalBytes + activationBytes;
  const split = model.largestTensorBytes > limits.maxStorageBufferBindingSize;
  replaceChildren(
    element,
    h(
      'table',
      { class: 'memory-table' },
      h(
        'caption',
        {},
        `${formatCount(summary.trainableParameters)} trainable parameters (${summary.trainablePercent.toFixed(2)}%)`,
      ),
      h(
        'tbody',
        {},
        [
          ['Weights', summary.weightBytes],
          ['Gradients', summary.gradientBytes],
          ['Optimizer state (AdamW)', summary.optimizerStateBytes],
          ['Activations (rough)', activationBytes],
          ['Total', total],
        ].map(([label, bytes]) =>
          h('tr', {}, h('th', { scope: 'row' }, String(label)), h('td', {}, formatBytes(Number(bytes)))),
        ),
      ),
    ),
    h(
      'p',
      { class: 'note' },
      `The largest weight is ${formatBytes(model.largestTensorBytes)}; this GPU binds at most ${formatBytes(limits.maxStorageBufferBindingSize)} at once` +
        (split ? ', so that tensor is split into chunks.' : '.') +
        ' Browsers do not report how much GPU memory is free: keep the total well under the GPU’s memory.',
    ),
  );
}
