import type { EngineEvent } from '../engine/protocol.js';
import { h } from './dom.js';

/**
 * Progress of one long step (loading, checking, exporting...): a label, a progress bar that is
 * indeterminate until a total is known, and the outcome or the error. Announced politely to
 * screen readers.
 */
export class TaskStatus {
  readonly element: HTMLElement;
  private readonly text: HTMLElement;
  private readonly bar: HTMLProgressElement;

  constructor(label: string) {
    this.text = h('span', { class: 'status-text' });
    this.bar = h('progress', { max: 1, hidden: true, 'aria-label': label });
    this.element = h(
      'div',
      { class: 'task-status', role: 'status', 'aria-live': 'polite' },
      this.bar,
      this.text,
    );
  }

  /** Shows a step as started, with an indeterminate bar. */
  start(label: string): void {
    this.element.dataset.state = 'running';
    this.bar.hidden = false;
    this.bar.removeAttribute('value');
    this.text.textContent = `${label}…`;
  }

  /** Updates the bar from an engine progress event. */
  progress(label: string, done: number, total: number): void {
    this.element.dataset.state = 'running';
    this.bar.hidden = false;
    if (total > 0) {
      this.bar.max = total;
      this.bar.value = Math.min(done, total);
      this.text.textContent = `${label}: ${Math.round((100 * done) / total)}%`;
    } else {
      this.bar.removeAttribute('value');
      this.text.textContent = `${label}…`;
    }
  }

  /** Forwards engine progress events to the bar; other events are ignored. */
  readonly onEvent = (event: EngineEvent): void => {
    if (event.type === 'progress') this.progress(event.label, event.done, event.total);
  };

  /** What the status shows now, to put back with restore() when a step is called off. */
  save(): { state: string | undefined; text: string; barHidden: boolean } {
    return {
      state: this.element.dataset.state,
      text: this.text.textContent ?? '',
      barHidden: this.bar.hidden,
    };
  }

  restore(saved: ReturnType<TaskStatus['save']>): void {
    if (saved.state === undefined) delete this.element.dataset.state;
    else this.element.dataset.state = saved.state;
    this.bar.hidden = saved.barHidden;
    this.text.textContent = saved.text;
  }

  done(message: string): void {
    this.element.dataset.state = 'done';
    this.bar.hidden = true;
    this.text.textContent = message;
  }

  fail(error: unknown): void {
    this.element.dataset.state = 'error';
    this.bar.hidden = true;
    this.text.textContent = error instanceof Error ? error.message : String(error);
  }

  /** Runs a step with this status: started, then done or failed. Returns the result or undefined. */
  async run<T>(
    label: string,
    step: () => Promise<T>,
    doneMessage: (result: T) => string,
  ): Promise<T | undefined> {
    this.start(label);
    try {
      const result = await step();
      this.done(doneMessage(result));
      return result;
    } catch (error) {
      this.fail(error);
      return undefined;
    }
  }
}
