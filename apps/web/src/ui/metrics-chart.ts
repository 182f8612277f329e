import './metrics-chart.css';
import { h, replaceChildren } from './dom.js';
import { formatNumber } from './format.js';

/**
 * The stage's own metrics, in the order they are shown: KTO and DPO (rewards/*, kl), PPO
 * (reward, ppo/kl, ppo/value_loss, ppo/policy_loss), a reward model (accuracy); others follow.
 */
const PREFERRED = [
  'reward',
  'ppo/kl',
  'ppo/value_loss',
  'ppo/policy_loss',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'kl',
  'rewards/accuracies',
  'accuracy',
  'ppo/kl_coef',
  'ppo/clipfrac',
  'ppo/response_length',
];
/** Keys of a trainer_log.jsonl row that are the loop's, not the stage's. */
const LOOP_KEYS = new Set([
  'current_steps',
  'total_steps',
  'loss',
  'lr',
  'epoch',
  'percentage',
  'throughput',
  'total_tokens',
  'grad_norm',
]);
const MAX_PANELS = 8;
const WIDTH = 260;
const HEIGHT = 96;

/** Where a metric comes first (preferred names in their order, then the rest by name). */
function rank(name: string): number {
  const index = PREFERRED.indexOf(name);
  return index < 0 ? PREFERRED.length : index;
}

/**
 * The live chart of a stage's metrics: one small line chart per metric (they have different
 * scales: a reward near 1, a value loss near 0.01), each with its range and last value, and every
 * value in a table (`data-metric`, `data-value` hold the exact numbers). Hidden until a step reports
 * metrics (SFT has none).
 */
export class MetricsChart {
  readonly element: HTMLElement;
  private readonly panels: HTMLElement;
  private readonly head: HTMLTableRowElement;
  private readonly body: HTMLTableSectionElement;
  private series = new Map<string, { step: number; value: number }[]>();
  private steps: number[] = [];

  constructor() {
    this.panels = h('div', { class: 'metric-panels' });
    this.head = h('tr');
    this.body = h('tbody');
    this.element = h(
      'figure',
      { class: 'metrics-chart', hidden: true },
      h('figcaption', {}, 'Stage metrics'),
      this.panels,
      h(
        'details',
        { class: 'metrics-table' },
        h('summary', {}, 'Stage metrics as a table'),
        h('table', {}, h('thead', {}, this.head), this.body),
      ),
    );
  }

  reset(): void {
    this.series.clear();
    this.steps = [];
    this.element.hidden = true;
    replaceChildren(this.panels, []);
    replaceChildren(this.head, []);
    replaceChildren(this.body, []);
  }

  /** A run's history from its trainer_log.jsonl rows: every numeric key beyond the loop's own. */
  loadHistory(rows: readonly Record<string, unknown>[]): void {
    this.reset();
    for (const row of rows) {
      const metrics: Record<string, number> = {};
      for (const [key, value] of Object.entries(row)) {
        if (typeof value === 'number' && !LOOP_KEYS.has(key) && !key.startsWith('eval_'))
          metrics[key] = value;
      }
      if (typeof row.current_steps === 'number') this.addStep(row.current_steps, metrics);
    }
  }

  /** The names charted, in their order. */
  names(): string[] {
    return [...this.series.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  /** Adds a step's metrics (non-finite values are left out; a step seen again replaces nothing). */
  addStep(step: number, metrics: Readonly<Record<string, number>>): void {
    const finite = Object.entries(metrics).filter(([, value]) => Number.isFinite(value));
    if (finite.length === 0 || this.steps.includes(step)) return;
    this.steps.push(step);
    for (const [name, value] of finite) {
      let points = this.series.get(name);
      if (!points) {
        points = [];
        this.series.set(name, points);
      }
      points.push({ step, value });
    }
    this.element.hidden = false;
    this.render();
  }

  private render(): void {
    const names = this.names();
    replaceChildren(this.head, [
      h('th', { scope: 'col' }, 'step'),
      ...names.map((name) => h('th', { scope: 'col' }, name)),
    ]);
    replaceChildren(
      this.body,
      this.steps.map((step) =>
        h(
          'tr',
          { 'data-step': String(step) },
          h('td', {}, String(step)),
          ...names.map((name) => {
            const point = this.series.get(name)!.find((candidate) => candidate.step === step);
            return point
              ? h('td', { 'data-metric': name, 'data-value': String(point.value) }, formatNumber(point.value))
              : h('td', { 'data-metric': name }, '');
          }),
        ),
      ),
    );
    replaceChildren(
      this.panels,
      names.slice(0, MAX_PANELS).map((name) => this.panel(name, this.series.get(name)!)),
    );
  }

  private panel(name: string, points: { step: number; value: number }[]): HTMLElement {
    const canvas = h('canvas', {
      class: 'metric-canvas',
      width: WIDTH,
      height: HEIGHT,
      role: 'img',
      'data-metric': name,
      'data-points': String(points.length),
    });
    const values = points.map((point) => point.value);
    const low = Math.min(...values);
    const high = Math.max(...values);
    const last = values[values.length - 1];
    canvas.setAttribute(
      'aria-label',
      `${name}: ${points.length} steps, from ${formatNumber(values[0])} to ${formatNumber(last)}`,
    );
    const context = canvas.getContext('2d');
    if (context) {
      const style = getComputedStyle(document.documentElement);
      const span = high - low || Math.abs(high) || 1;
      const firstStep = points[0].step;
      const stepSpan = Math.max(1, points[points.length - 1].step - firstStep);
      const x = (step: number) => 6 + ((step - firstStep) / stepSpan) * (WIDTH - 12);
      const y = (value: number) => HEIGHT - 8 - ((value - low) / span) * (HEIGHT - 16);
      context.strokeStyle = style.getPropertyValue('--chart-grid').trim() || '#ccc';
      if (low < 0 && high > 0) {
        context.beginPath();
        context.moveTo(0, y(0));
        context.lineTo(WIDTH, y(0));
        context.stroke();
      }
      context.strokeStyle = style.getPropertyValue('--chart-loss').trim() || '#1f5fbf';
      context.lineWidth = 2;
      context.beginPath();
      points.forEach((point, index) => {
        if (index === 0) context.moveTo(x(point.step), y(point.value));
        else context.lineTo(x(point.step), y(point.value));
      });
      context.stroke();
      if (points.length === 1) context.fillRect(x(points[0].step) - 2, y(points[0].value) - 2, 4, 4);
    }
    return h(
      'div',
      { class: 'metric-panel' },
      h('div', { class: 'metric-name' }, name, h('span', { class: 'metric-last' }, formatNumber(last))),
      canvas,
      h('div', { class: 'metric-range' }, `${formatNumber(low)} … ${formatNumber(high)}`),
    );
  }
}
