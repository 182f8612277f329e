import type { BoardContext } from '../board.js';
import type { GenerateSettings } from '../engine/protocol.js';
import { field, h, numberInput, replaceChildren } from '../ui/dom.js';
import { TaskStatus } from '../ui/task-status.js';
import { preferenceActions } from './preference-actions.js';

type Variant = 'base' | 'tuned';

interface Column {
  element: HTMLElement;
  heading: HTMLElement;
  output: HTMLElement;
}

function column(title: string): Column {
  const heading = h('h3', {}, title);
  const output = h('div', { class: 'answer', 'aria-live': 'polite', 'aria-busy': 'false' });
  return { element: h('article', { class: 'chat-column' }, heading, output), heading, output };
}

/**
 * Chat: the base and the tuned model answer the same prompt, side by side and streaming; in blind
 * A/B mode their order is hidden until you vote, and a vote for one answer becomes a preference
 * pair that can feed a DPO run.
 */
export function chatTab(context: BoardContext): HTMLElement {
  const { engine, store, preferences } = context;
  const status = new TaskStatus('Generating');
  const prompt = h('textarea', { name: 'prompt', rows: 3, placeholder: 'Once upon a time' });
  const maxNewTokens = numberInput('max_new_tokens', 512, { min: 1, step: 1 });
  const temperature = numberInput('temperature', 0.95, { min: 0, step: 0.05 });
  const topP = numberInput('top_p', 0.7, { min: 0, max: 1, step: 0.05 });
  const seed = numberInput('seed', 0, { step: 1 });
  const sideBySide = h('input', { type: 'radio', name: 'chat-mode', value: 'side-by-side', checked: true });
  const blind = h('input', { type: 'radio', name: 'chat-mode', value: 'blind' });
  const send = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Send');
  const left = column('Base model');
  const right = column('Tuned model');
  const voteBar = h('div', {
    class: 'vote-bar',
    role: 'group',
    'aria-label': 'Which answer is better?',
    hidden: true,
  });
  const voteNote = h('p', { class: 'note', 'aria-live': 'polite' });
  const pairsSummary = h('p', { class: 'pairs-count' });
  const pairsTable = h('tbody');

  const settings = (): GenerateSettings => ({
    maxNewTokens: Number(maxNewTokens.value) || 1,
    temperature: Number(temperature.value),
    topP: Number(topP.value) || 1,
    seed: Number(seed.value) || 0,
  });

  const generateInto = async (variant: Variant, target: Column, text: string): Promise<string> => {
    target.output.textContent = '';
    target.output.setAttribute('aria-busy', 'true');
    try {
      const result = await engine.call(
        { kind: 'generate', prompt: text, variant, settings: settings() },
        (event) => {
          if (event.type === 'token') target.output.textContent += event.text;
        },
      );
      target.output.textContent = result.text;
      target.output.dataset.tokensPerSecond = (
        (1000 * result.tokens) /
        Math.max(1, result.milliseconds)
      ).toFixed(1);
      return result.text;
    } finally {
      target.output.setAttribute('aria-busy', 'false');
    }
  };

  let pending: { prompt: string; answers: [string, string]; order: [Variant, Variant] } | null = null;

  const vote = (choice: 0 | 1 | 'tie' | 'bad') => {
    if (!pending) return;
    const { order, answers } = pending;
    left.heading.textContent = `Answer 1 (${order[0]} model)`;
    right.heading.textContent = `Answer 2 (${order[1]} model)`;
    if (choice === 0 || choice === 1) {
      const other = choice === 0 ? 1 : 0;
      if (answers[choice] === answers[other]) {
        voteNote.textContent = 'The two answers are the same text: no preference pair to record.';
      } else {
        preferences.add({
          prompt: pending.prompt,
          chosen: answers[choice],
          rejected: answers[other],
          chosenModel: order[choice],
          createdAt: new Date().toISOString(),
        });
        voteNote.textContent = `Recorded: you preferred the ${order[choice]} model's answer.`;
      }
    } else
      voteNote.textContent = choice === 'tie' ? 'A tie: no pair recorded.' : 'Both bad: no pair recorded.';
    pending = null;
    voteBar.hidden = true;
  };
  replaceChildren(
    voteBar,
    h('button', { type: 'button', onclick: () => vote(0) }, 'Answer 1 is better'),
    h('button', { type: 'button', onclick: () => vote(1) }, 'Answer 2 is better'),
    h('button', { type: 'button', onclick: () => vote('tie') }, 'Tie'),
    h('button', { type: 'button', onclick: () => vote('bad') }, 'Both are bad'),
  );

  const form = h(
    'form',
    {
      class: 'chat-form',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const text = prompt.value.trim();
        if (!text) return;
        send.disabled = true;
        voteBar.hidden = true;
        voteNote.textContent = '';
        pending = null;
        const isBlind = blind.checked;
        const order: [Variant, Variant] =
          isBlind && Math.random() < 0.5 ? ['tuned', 'base'] : ['base', 'tuned'];
        left.heading.textContent = isBlind ? 'Answer 1' : 'Base model';
        right.heading.textContent = isBlind
          ? 'Answer 2'
          : store.get().tuned
            ? 'Tuned model'
            : 'Tuned model (not trained yet: same as base)';
        status.start('Generating');
        try {
          const first = await generateInto(order[0], left, text);
          const second = await generateInto(order[1], right, text);
          status.done(isBlind ? 'Both answers are in: which is better?' : 'Done.');
          if (isBlind) {
            pending = { prompt: text, answers: [first, second], order };
            voteBar.hidden = false;
            voteBar.querySelector('button')?.focus();
          }
        } catch (error) {
          status.fail(error);
        } finally {
          updateSend();
        }
      },
    },
    field('Prompt', prompt, 'Ctrl+Enter sends.'),
    h(
      'fieldset',
      { class: 'mode' },
      h('legend', {}, 'Mode'),
      h('label', {}, sideBySide, ' Side by side'),
      h('label', {}, blind, ' Blind A/B (vote, then see which model wrote what)'),
    ),
    h(
      'details',
      { class: 'sampling' },
      h('summary', {}, 'Sampling'),
      h(
        'div',
        { class: 'form-grid' },
        field('Max new tokens', maxNewTokens),
        field('Temperature', temperature, '0 picks the most likely token every time.'),
        field('Top-p', topP, 'Sample among the most likely tokens that make up this share.'),
        field('Seed', seed, 'Both models sample with the same seed.'),
      ),
    ),
    h('div', { class: 'actions' }, send),
    status.element,
  );
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  const renderPairs = () => {
    const pairs = preferences.all;
    pairsSummary.textContent = `${pairs.length} preference pair${pairs.length === 1 ? '' : 's'} recorded.`;
    replaceChildren(
      pairsTable,
      pairs
        .slice(-20)
        .reverse()
        .map((pair) =>
          h(
            'tr',
            {},
            h('td', { 'data-label': 'Prompt' }, pair.prompt),
            h('td', { 'data-label': 'Chosen' }, pair.chosen),
            h('td', { 'data-label': 'Rejected' }, pair.rejected),
            h('td', { 'data-label': 'Chosen model' }, pair.chosenModel),
          ),
        ),
    );
  };
  preferences.subscribe(renderPairs);
  renderPairs();

  const updateSend = () => {
    const state = store.get();
    send.disabled =
      !(state.model && state.device) ||
      state.training === 'running' ||
      state.training === 'pausing' ||
      state.training === 'stopping';
  };
  store.subscribe(updateSend);

  return h(
    'section',
    { 'aria-labelledby': 'chat-heading' },
    h('h2', { id: 'chat-heading' }, 'Chat'),
    h('div', { class: 'card' }, form),
    h('div', { class: 'chat-columns' }, left.element, right.element),
    voteBar,
    voteNote,
    h(
      'div',
      { class: 'card' },
      h('h3', {}, 'Preference pairs from your votes'),
      pairsSummary,
      preferenceActions(context),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'pairs stack' },
          h('caption', { class: 'visually-hidden' }, 'Latest preference pairs'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Prompt', 'Chosen', 'Rejected', 'Chosen model'].map((name) => h('th', { scope: 'col' }, name)),
            ),
          ),
          pairsTable,
        ),
      ),
    ),
  );
}
