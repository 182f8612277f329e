import type { BoardContext } from '../board.js';
import type { PredictReply } from '../engine/protocol.js';
import { downloadBytes, field, h, numberInput, replaceChildren, select } from '../ui/dom.js';
import { filesOfInput } from '../ui/file-drop.js';
import { TaskStatus } from '../ui/task-status.js';

const METRICS = ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const;

/**
 * Predict, as `webtune eval predict`: every SFT row of a dataset is answered (greedy, the last
 * assistant turn is the reference) and scored with BLEU-4 and ROUGE-1/2/L (@webtune/eval); the
 * predictions download as LLaMA-Factory's generated_predictions.jsonl.
 */
export function predictCard(context: BoardContext): { element: HTMLElement; button: HTMLButtonElement } {
  const { engine } = context;
  const status = new TaskStatus('Predict');
  const dataset = h('input', {
    type: 'file',
    multiple: true,
    name: 'predict-dataset',
    accept: '.json,.jsonl,.csv,.parquet',
  });
  const samples = numberInput('predict-samples', 20, { min: 0, step: 1 });
  const newTokens = numberInput('predict-new-tokens', 64, { min: 1, step: 1 });
  const models = select(
    'predict-models',
    [
      ['both', 'base and tuned'],
      ['base', 'base'],
      ['tuned', 'tuned'],
    ],
    'both',
  );
  const result = h('div', { class: 'result' });
  const button = h('button', { type: 'submit', disabled: true }, 'Predict and score');
  const form = h(
    'form',
    {
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const files = filesOfInput(dataset);
        if (Object.keys(files).length === 0) {
          status.fail(new Error('pick a dataset file (Alpaca or ShareGPT rows with answers)'));
          return;
        }
        status.start('Predicting');
        try {
          const replies: PredictReply[] = [];
          for (const variant of models.value === 'both'
            ? (['base', 'tuned'] as const)
            : [models.value as 'base' | 'tuned']) {
            replies.push(
              await engine.call(
                {
                  kind: 'predict',
                  files,
                  maxSamples: Number(samples.value) || 0,
                  maxNewTokens: Number(newTokens.value) || 1,
                  variant,
                },
                status.onEvent,
              ),
            );
          }
          status.done(`Scored ${replies[0].metrics.samples} samples.`);
          renderScores(result, replies);
        } catch (error) {
          status.fail(error);
        }
      },
    },
    h(
      'div',
      { class: 'form-grid' },
      field('Test dataset', dataset, 'Rows whose last assistant turn is the reference answer.'),
      field('Samples', samples, '0 answers every row.'),
      field('Max new tokens', newTokens),
      field('Models', models),
    ),
    h('div', { class: 'actions' }, button),
    status.element,
    result,
  );
  return {
    element: h('div', { class: 'card' }, h('h3', {}, 'Predict on a dataset (BLEU, ROUGE)'), form),
    button,
  };
}

function renderScores(element: HTMLElement, replies: PredictReply[]): void {
  replaceChildren(
    element,
    h(
      'table',
      { class: 'results predict-scores' },
      h('caption', {}, 'Means x 100 (BLEU-4 with NIST smoothing, ROUGE F1), as webtune eval predict'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Model'),
          METRICS.map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      h(
        'tbody',
        {},
        replies.map((reply) =>
          h(
            'tr',
            { 'data-variant': reply.variant },
            h('th', { scope: 'row' }, reply.variant),
            METRICS.map((name) => h('td', {}, reply.metrics[name].toFixed(2))),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'actions' },
      replies.map((reply) =>
        h(
          'button',
          {
            type: 'button',
            onclick: () =>
              downloadBytes(
                `generated_predictions_${reply.variant}.jsonl`,
                reply.records.map((record) => JSON.stringify(record)).join('\n') + '\n',
                'application/jsonl',
              ),
          },
          `Download the ${reply.variant} predictions`,
        ),
      ),
    ),
  );
}

/**
 * The forgetting report (`webtune eval forgetting`): a general multiple-choice benchmark and held-out
 * texts of the training domain, scored with the base and the tuned model, weighed into a verdict.
 */
export function forgettingCard(context: BoardContext): { element: HTMLElement; button: HTMLButtonElement } {
  const { engine } = context;
  const status = new TaskStatus('Forgetting report');
  const folder = h('input', {
    type: 'file',
    webkitdirectory: true,
    multiple: true,
    name: 'forgetting-general',
  });
  const texts = h('textarea', {
    name: 'forgetting-domain',
    rows: 4,
    placeholder: 'Held-out texts of your domain, separated by a blank line.',
  });
  const shots = numberInput('forgetting-shots', 0, { min: 0, step: 1 });
  const limit = numberInput('forgetting-limit', 5, { min: 0, step: 1 });
  const output = h('pre', { class: 'forgetting-report', hidden: true });
  const button = h('button', { type: 'submit', disabled: true }, 'Build the report');
  const form = h(
    'form',
    {
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const general = filesOfInput(folder);
        if (Object.keys(general).length === 0) {
          status.fail(new Error('pick a general benchmark folder (MMLU, C-Eval or CMMLU layout)'));
          return;
        }
        const reply = await status.run(
          'Scoring base and tuned',
          () =>
            engine.call(
              {
                kind: 'forgetting',
                general,
                domainTexts: texts.value.split(/\n\s*\n/),
                nShot: Number(shots.value) || 0,
                maxQuestions: Number(limit.value) || 0,
              },
              status.onEvent,
            ),
          (value) => value.report.summary,
        );
        if (reply) {
          output.hidden = false;
          output.textContent = reply.text;
          output.dataset.verdict = reply.report.verdict;
        }
      },
    },
    field('General benchmark folder', folder, 'General skill the tuning should keep.'),
    field('Domain texts', texts, 'What the tuning should improve, scored by perplexity.'),
    h(
      'div',
      { class: 'form-grid' },
      field('Shots', shots),
      field('Question limit per subject', limit, '0 scores every question.'),
    ),
    h('div', { class: 'actions' }, button),
    status.element,
    output,
  );
  return { element: h('div', { class: 'card' }, h('h3', {}, 'Forgetting report'), form), button };
}
