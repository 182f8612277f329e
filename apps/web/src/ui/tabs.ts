import { h } from './dom.js';

export interface TabDefinition {
  id: string;
  label: string;
  panel: HTMLElement;
}

/**
 * WAI-ARIA tabs: a tablist with a roving tabindex (arrow keys, Home and End move between tabs,
 * which activate on focus), each tab controlling its panel. The selected tab is kept in the URL
 * hash so a reload stays on it.
 */
export class Tabs {
  readonly element: HTMLElement;
  private readonly buttons: HTMLButtonElement[];
  private readonly panels: HTMLElement[];
  private readonly listeners = new Set<(id: string) => void>();

  constructor(private readonly tabs: TabDefinition[]) {
    this.buttons = tabs.map((tab, index) =>
      h(
        'button',
        {
          type: 'button',
          role: 'tab',
          id: `tab-${tab.id}`,
          'aria-controls': `panel-${tab.id}`,
          'aria-selected': 'false',
          tabIndex: -1,
          onclick: () => this.select(tab.id, true),
          onkeydown: (event: KeyboardEvent) => this.onKey(event, index),
        },
        tab.label,
      ),
    );
    this.panels = tabs.map((tab) => {
      tab.panel.id = `panel-${tab.id}`;
      tab.panel.setAttribute('role', 'tabpanel');
      tab.panel.setAttribute('aria-labelledby', `tab-${tab.id}`);
      tab.panel.tabIndex = 0;
      tab.panel.hidden = true;
      tab.panel.classList.add('panel');
      return tab.panel;
    });
    this.element = h(
      'div',
      { class: 'tabs' },
      h(
        'nav',
        { class: 'tablist-wrap' },
        h('div', { role: 'tablist', 'aria-label': 'Board sections', class: 'tablist' }, this.buttons),
      ),
      h('main', { id: 'main' }, this.panels),
    );
    const fromHash = location.hash.slice(1);
    this.select(tabs.some((tab) => tab.id === fromHash) ? fromHash : tabs[0].id, false);
    window.addEventListener('hashchange', () => {
      const id = location.hash.slice(1);
      if (this.tabs.some((tab) => tab.id === id)) this.select(id, false);
    });
  }

  /** Shows a tab's panel; `focus` moves keyboard focus to the tab. */
  select(id: string, focus: boolean): void {
    this.tabs.forEach((tab, index) => {
      const selected = tab.id === id;
      this.buttons[index].setAttribute('aria-selected', String(selected));
      this.buttons[index].tabIndex = selected ? 0 : -1;
      this.panels[index].hidden = !selected;
      if (selected && focus) this.buttons[index].focus();
    });
    if (location.hash.slice(1) !== id) history.replaceState(null, '', `#${id}`);
    for (const listener of this.listeners) listener(id);
  }

  onSelect(listener: (id: string) => void): void {
    this.listeners.add(listener);
  }

  private onKey(event: KeyboardEvent, index: number): void {
    const count = this.tabs.length;
    const target =
      event.key === 'ArrowRight' || event.key === 'ArrowDown'
        ? (index + 1) % count
        : event.key === 'ArrowLeft' || event.key === 'ArrowUp'
          ? (index - 1 + count) % count
          : event.key === 'Home'
            ? 0
            : event.key === 'End'
              ? count - 1
              : -1;
    if (target < 0) return;
    event.preventDefault();
    this.select(this.tabs[target].id, true);
  }
}
