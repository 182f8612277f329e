import type { BoardContext } from '../board.js';
import { downloadBytes, h } from '../ui/dom.js';

/**
 * The preference pairs' buttons: download them, use them for a DPO run (only when there is a pair),
 * and clear them (after a confirmation: votes cannot be recorded again).
 */
export function preferenceActions(context: BoardContext): HTMLElement {
  const { preferences } = context;
  const download = h(
    'button',
    {
      type: 'button',
      onclick: () => downloadBytes('preference_pairs.json', preferences.toDatasetJson(), 'application/json'),
    },
    'Download as a dataset',
  );
  const useForDpo = h(
    'button',
    {
      type: 'button',
      onclick: () =>
        context.useDatasets(
          {
            'preference_pairs.json': new Blob([preferences.toDatasetJson()], { type: 'application/json' }),
          },
          'dpo',
        ),
    },
    'Use for a DPO run',
  );
  const clear = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        const count = preferences.all.length;
        if (window.confirm(`Delete all ${count} recorded preference pair${count === 1 ? '' : 's'}?`)) {
          preferences.clear();
        }
      },
    },
    'Clear',
  );
  const update = () => {
    const empty = preferences.all.length === 0;
    download.disabled = empty;
    useForDpo.disabled = empty;
    clear.disabled = empty;
    useForDpo.title = empty ? 'Vote in blind A/B mode first: a DPO run needs at least one pair.' : '';
  };
  preferences.subscribe(update);
  update();
  return h('div', { class: 'actions' }, download, useForDpo, clear);
}
