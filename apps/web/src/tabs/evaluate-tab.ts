import type { BoardContext } from '../board.js';
import { adapterPicker } from '../ui/adapter-picker.js';
import { field, h, numberInput, replaceChildren, select } from '../ui/dom.js';
import { filesOfInput } from '../ui/file-drop.js';
import { formatNumber } from '../ui/format.js';
import { TaskStatus } from '../ui/task-status.js';
import { forgettingCard, predictCard } from './evaluate-predict.js';

type Variant = 'base' | 'tuned';

function variantsOf(choice: string): Variant[] {
  return choice === 'both' ? ['base', 'tuned'] : [choice as Variant];
}

/** Evaluate: perplexity of a text, and multiple-choice benchmarks from an uploaded task folder. */
export function evaluateTab(context: BoardContext): HTMLElement {
  const { engine, store } = context;
  const models = () =>
    select(
      'models',
      [
        ['both', 'base and tuned'],
        ['base', 'base'],
        ['tuned', 'tuned'],
      ],
      'both',
    );

  // Perplexity.
  const perplexityStatus = new TaskStatus('Perplexity');
  const text = h('textarea', {
    name: 'perplexity-text',
    rows: 5,
    placeholder: 'Held-out text the model should find likely.',
  });
  const textFile = h('input', { type: 'file', name: 'perplexity-file', accept: '.txt,.md,text/plain' });
  textFile.addEventListener('change', async () => {
    const file = textFile.files?.[0];
    if (file) text.value = await file.text();
  });
  const perplexityModels = models();
  const perplexityResult = h('div', { class: 'result' });
  const perplexityButton = h('button', { type: 'submit', disabled: true }, 'Compute perplexity');
  const perplexityForm = h(
    'form',
    {
      onsubmit: async (event: Event) => {
        event.preventDefault();
        if (!text.value.trim()) return;
        const rows: HTMLTableRowElement[] = [];
        perplexityStatus.start('Computing perplexity');
        try {
          for (const variant of variantsOf(perplexityModels.value)) {
            const result = await engine.call({ kind: 'perplexity', text: text.value, variant });
            rows.push(
              h(
                'tr',
                {},
                h('th', { scope: 'row' }, variant),
                h('td', {}, formatNumber(result.perplexity)),
                h('td', {}, formatNumber(result.meanLoss)),
                h('td', {}, result.tokens),
              ),
            );
          }
          perplexityStatus.done('Done.');
          replaceChildren(
            perplexityResult,
            h(
              'table',
              { class: 'results' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Model', 'Perplexity', 'Mean loss (nats)', 'Tokens scored'].map((name) =>
                    h('th', { scope: 'col' }, name),
                  ),
                ),
              ),
              h('tbody', {}, rows),
            ),
          );
        } catch (error) {
          perplexityStatus.fail(error);
        }
      },
    },
    field('Text', text),
    field('Or a text file', textFile),
    field('Models', perplexityModels),
    h('div', { class: 'actions' }, perplexityButton),
    perplexityStatus.element,
    perplexityResult,
  );

  // Multiple choice.
  const mcqStatus = new TaskStatus('Benchmark');
  const folder = h('input', { type: 'file', webkitdirectory: true, multiple: true, name: 'task-folder' });
  const nShot = numberInput('n_shot', 5, { min: 0, step: 1 });
  const limit = numberInput('limit', 0, { min: 0, step: 1 });
  const mcqModels = models();
  const mcqResult = h('div', { class: 'result' });
  const mcqButton = h('button', { type: 'submit', disabled: true }, 'Run the benchmark');
  const mcqForm = h(
    'form',
    {
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const files = filesOfInput(folder);
        if (Object.keys(files).length === 0) {
          mcqStatus.fail(new Error('pick a task folder (with mapping.json and dev/, val/, test/ CSV files)'));
          return;
        }
        mcqStatus.start('Scoring');
        try {
          const sections: HTMLElement[] = [];
          for (const variant of variantsOf(mcqModels.value)) {
            const result = await engine.call(
              {
                kind: 'mcq',
                files,
                nShot: Number(nShot.value) || 0,
                maxQuestions: Number(limit.value) || 0,
                variant,
              },
              mcqStatus.onEvent,
            );
            sections.push(
              h(
                'table',
                { class: 'results' },
                h(
                  'caption',
                  {},
                  `${variant} model: ${(100 * result.accuracy).toFixed(1)}% of ${result.questions} questions`,
                ),
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    h('th', { scope: 'col' }, 'Subject'),
                    h('th', { scope: 'col' }, 'Accuracy'),
                    h('th', { scope: 'col' }, 'Questions'),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  result.subjects.map((subject) =>
                    h(
                      'tr',
                      {},
                      h('th', { scope: 'row' }, subject.name),
                      h('td', {}, `${(100 * subject.accuracy).toFixed(1)}%`),
                      h('td', {}, subject.questions),
                    ),
                  ),
                ),
              ),
            );
          }
          mcqStatus.done('Done.');
          replaceChildren(mcqResult, sections);
        } catch (error) {
          mcqStatus.fail(error);
        }
      },
    },
    field(
      'Task folder',
      folder,
      'An MMLU, C-Eval or CMMLU folder: mapping.json, dev/, val/ and test/ CSV files.',
    ),
    h(
      'div',
      { class: 'form-grid' },
      field('Examples in each prompt (n-shot)', nShot),
      field('Questions per subject', limit, '0 scores every question.'),
      field('Models', mcqModels),
    ),
    h('div', { class: 'actions' }, mcqButton),
    mcqStatus.element,
    mcqResult,
  );

  const prediction = predictCard(context);
  const forgetting = forgettingCard(context);
  store.subscribe((state) => {
    const ready = Boolean(state.model && state.device) && state.training !== 'running';
    perplexityButton.disabled = !ready;
    mcqButton.disabled = !ready;
    prediction.button.disabled = !ready;
    forgetting.button.disabled = !ready;
  });

  return h(
    'section',
    { 'aria-labelledby': 'evaluate-heading' },
    h('h2', { id: 'evaluate-heading' }, 'Evaluate'),
    h('div', { class: 'card' }, h('h3', {}, 'Perplexity'), perplexityForm),
    h('div', { class: 'card' }, h('h3', {}, 'Multiple-choice benchmark'), mcqForm),
    prediction.element,
    forgetting.element,
    h('div', { class: 'card' }, h('h3', {}, 'Which adapter'), adapterPicker(context, 'evaluate')),
  );
}
