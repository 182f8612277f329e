import type { BoardContext } from '../board.js';
import { QUICK_START_MODELS } from '../engine/hub-download.js';
import type { BaseStorage, ModelSummary } from '../engine/protocol.js';
import { field, h, select } from '../ui/dom.js';
import { formatCount } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';

/** Where hub models come from unless the page says otherwise (`?hub=` sets another server). */
export function defaultHubUrl(): string {
  return new URLSearchParams(location.search).get('hub') ?? 'https://huggingface.co';
}

/**
 * One-click start: a small real model from a short list (or any hub id), downloaded from the hub
 * with progress and kept in the browser's cache, so a reload loads it without the network.
 */
export function quickStart(
  context: BoardContext,
  baseFormat: () => BaseStorage,
  loaded: (summary: ModelSummary) => void,
): { element: HTMLElement; button: HTMLButtonElement } {
  const { engine } = context;
  const status = new TaskStatus('Downloading the model');
  const choice = select(
    'quick-model',
    [
      ...QUICK_START_MODELS.map(({ repo, label }) => [repo, label] as [string, string]),
      ['', 'Another hub model…'],
    ],
    QUICK_START_MODELS[0].repo,
  );
  const repo = h('input', {
    type: 'text',
    name: 'hub-repo',
    placeholder: 'owner/name, e.g. Qwen/Qwen3-0.6B',
    spellcheck: false,
    autocomplete: 'off',
  });
  const revision = h('input', { type: 'text', name: 'hub-revision', value: 'main', spellcheck: false });
  const hubUrl = h('input', { type: 'url', name: 'hub-url', value: defaultHubUrl(), spellcheck: false });
  // Never stored: the page forgets it on reload, as a shell forgets an HF_TOKEN it was not given.
  const token = h('input', {
    type: 'password',
    name: 'hub-token',
    autocomplete: 'off',
    spellcheck: false,
    placeholder: 'hf_…',
  });
  const cached = h('p', { class: 'note cached-models' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Download and load');
  choice.addEventListener('change', () => {
    if (choice.value) repo.value = '';
  });
  repo.addEventListener('input', () => {
    if (repo.value.trim()) choice.value = '';
  });
  const showCached = async () => {
    try {
      const { models } = await engine.call({ kind: 'cached-hub-models' });
      cached.textContent =
        models.length > 0 ? `In this browser’s cache (no download needed): ${models.join(', ')}.` : '';
    } catch {
      cached.textContent = '';
    }
  };
  const form = h(
    'form',
    {
      class: 'quick-start',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const id = repo.value.trim() || choice.value;
        if (!id) {
          status.fail(new Error('choose a model from the list or type a hub id (owner/name)'));
          return;
        }
        const summary = await status.run(
          `Fetching ${id}`,
          () =>
            engine.call(
              {
                kind: 'load-model-hub',
                hub: { baseUrl: hubUrl.value, repo: id, revision: revision.value, token: token.value },
                baseFormat: baseFormat(),
              },
              (engineEvent) => {
                if (engineEvent.type === 'log') form.dataset.source = engineEvent.line;
                status.onEvent(engineEvent);
              },
            ),
          (result) =>
            `Loaded ${result.location} (${form.dataset.source ?? 'downloaded'}): ${formatCount(result.parameters)} parameters.`,
        );
        if (summary) {
          loaded(summary);
          showCached();
        }
      },
    },
    h(
      'div',
      { class: 'form-grid' },
      field('Model', choice, 'Small chat models that train in a tab.'),
      field('Or a hub id', repo, 'Any model of a supported architecture, as owner/name.'),
    ),
    h(
      'details',
      { class: 'hub-settings' },
      h('summary', {}, 'Hub settings'),
      h(
        'div',
        { class: 'form-grid' },
        field('Revision', revision, 'A branch, tag or commit.'),
        field('Hub URL', hubUrl, 'The hub or a mirror with its API and {id}/resolve/{commit}/{file}.'),
        field(
          'Access token',
          token,
          'For private or gated models (what HF_TOKEN is to the CLI); kept only until the page closes.',
        ),
      ),
    ),
    h('div', { class: 'actions' }, button),
    status.element,
    cached,
  );
  context.store.subscribe((state, previous) => {
    if (state.device && !previous.device) showCached();
  });
  return {
    element: h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Quick start: a model from the hub'),
      h(
        'p',
        {},
        'Downloaded once with progress (a cut download resumes where it stopped) and kept in this browser’s cache: a reload fetches no file again.',
      ),
      form,
    ),
    button,
  };
}
