import { h } from './dom.js';
import { formatNumber } from './format.js';

interface Point {
  step: number;
  value: number;
}

/** A finding of the trainer's diagnostics, marked on the chart at its step. */
export interface ChartMarker {
  step: number;
  kind: string;
  severity: 'warning' | 'error';
  message: string;
}

const MARGIN = { left: 52, right: 60, top: 14, bottom: 30 };

/** Round tick values (1, 2 or 5 times a power of ten) covering [low, high] with about `count` steps. */
export function niceTicks(low: number, high: number, count: number): number[] {
  const span = Math.max(high - low, 1e-12);
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step =
    [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let value = Math.floor(low / step) * step; value <= high + step * 1e-9; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < high) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/**
 * The live training chart: train loss and eval loss on the left axis, the learning rate on the
 * right one, diagnostics as vertical marks. Drawn on a canvas (cheap to redraw every step), with
 * the same numbers in a table for screen readers and for copying.
 */
export class TrainingChart {
  readonly element: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tableBody: HTMLTableSectionElement;
  private readonly markerList: HTMLOListElement;
  private loss: Point[] = [];
  private evalLoss: Point[] = [];
  private learningRate: Point[] = [];
  private markers: ChartMarker[] = [];
  private totalSteps = 1;
  private frame = 0;

  constructor() {
    this.canvas = h('canvas', {
      class: 'chart-canvas',
      role: 'img',
      'aria-label': 'Training chart: no steps yet',
    });
    this.tableBody = h('tbody');
    this.markerList = h('ol', { class: 'markers', 'aria-label': 'Diagnostics' });
    const legend = h(
      'ul',
      { class: 'legend', 'aria-hidden': 'true' },
      h('li', { class: 'legend-loss' }, 'loss'),
      h('li', { class: 'legend-eval' }, 'eval loss'),
      h('li', { class: 'legend-lr' }, 'learning rate (right axis)'),
      h('li', { class: 'legend-marker' }, 'diagnostic'),
    );
    this.element = h(
      'figure',
      { class: 'training-chart' },
      this.canvas,
      h('figcaption', {}, legend),
      this.markerList,
      h(
        'details',
        { class: 'chart-table' },
        h('summary', {}, 'Chart data as a table'),
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'step'),
              h('th', { scope: 'col' }, 'loss'),
              h('th', { scope: 'col' }, 'eval loss'),
              h('th', { scope: 'col' }, 'learning rate'),
            ),
          ),
          this.tableBody,
        ),
      ),
    );
    new ResizeObserver(() => this.schedule()).observe(this.canvas);
  }

  /** Clears the chart for a run of `totalSteps` steps. */
  reset(totalSteps: number): void {
    this.loss = [];
    this.evalLoss = [];
    this.learningRate = [];
    this.markers = [];
    this.totalSteps = Math.max(1, totalSteps);
    this.tableBody.replaceChildren();
    this.markerList.replaceChildren();
    this.schedule();
  }

  /** Sets the step count without clearing (a resumed run). */
  setTotalSteps(totalSteps: number): void {
    this.totalSteps = Math.max(1, totalSteps);
    this.schedule();
  }

  addStep(step: number, loss: number, learningRate: number): void {
    this.loss.push({ step, value: loss });
    this.learningRate.push({ step, value: learningRate });
    this.tableBody.append(
      h(
        'tr',
        { 'data-step': step },
        h('td', {}, step),
        h('td', {}, formatNumber(loss)),
        h('td', {}, ''),
        h('td', {}, learningRate.toExponential(2)),
      ),
    );
    this.schedule();
  }

  addEval(step: number, loss: number): void {
    this.evalLoss.push({ step, value: loss });
    const row = this.tableBody.querySelector(`tr[data-step="${step}"]`);
    if (row) row.children[2].textContent = formatNumber(loss);
    else
      this.tableBody.append(
        h(
          'tr',
          { 'data-step': step },
          h('td', {}, step),
          h('td', {}, ''),
          h('td', {}, formatNumber(loss)),
          h('td', {}, ''),
        ),
      );
    this.schedule();
  }

  addMarker(marker: ChartMarker): void {
    this.markers.push(marker);
    this.markerList.append(
      h(
        'li',
        { class: `marker marker-${marker.severity}` },
        h('strong', {}, `Step ${marker.step}: ${marker.kind.replace(/-/g, ' ')}. `),
        marker.message,
      ),
    );
    this.schedule();
  }

  /** Points drawn: what tests and the accessible label report. */
  get counts(): { loss: number; evalLoss: number; learningRate: number; markers: number } {
    return {
      loss: this.loss.length,
      evalLoss: this.evalLoss.length,
      learningRate: this.learningRate.length,
      markers: this.markers.length,
    };
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const canvas = this.canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const context = canvas.getContext('2d');
    if (!context) return;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    const style = getComputedStyle(canvas);
    const color = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
    const colors = {
      text: color('--chart-text', '#444'),
      grid: color('--chart-grid', '#ddd'),
      loss: color('--chart-loss', '#1f5fbf'),
      eval: color('--chart-eval', '#c0561b'),
      lr: color('--chart-lr', '#6b6b6b'),
      warning: color('--chart-warning', '#b07800'),
      error: color('--chart-error', '#b3261e'),
    };
    context.clearRect(0, 0, width, height);
    context.font = '11px system-ui, sans-serif';

    const plot = {
      left: MARGIN.left,
      top: MARGIN.top,
      width: Math.max(10, width - MARGIN.left - MARGIN.right),
      height: Math.max(10, height - MARGIN.top - MARGIN.bottom),
    };
    const lastStep = Math.max(
      this.totalSteps,
      ...this.loss.map((p) => p.step),
      ...this.evalLoss.map((p) => p.step),
    );
    const lossValues = [...this.loss, ...this.evalLoss].map((p) => p.value).filter(Number.isFinite);
    let low = lossValues.length > 0 ? Math.min(...lossValues) : 0;
    let high = lossValues.length > 0 ? Math.max(...lossValues) : 1;
    if (high - low < 1e-6) {
      low -= 0.5;
      high += 0.5;
    }
    const lossTicks = niceTicks(Math.max(0, low - (high - low) * 0.05), high + (high - low) * 0.05, 4);
    low = lossTicks[0];
    high = lossTicks[lossTicks.length - 1];
    const lrTicks = niceTicks(0, Math.max(1e-12, ...this.learningRate.map((p) => p.value)), 4);
    const lrMax = lrTicks[lrTicks.length - 1];
    const x = (step: number) =>
      plot.left + (lastStep <= 1 ? plot.width / 2 : ((step - 1) / (lastStep - 1)) * plot.width);
    const yLoss = (value: number) => plot.top + (1 - (value - low) / (high - low)) * plot.height;
    const yLr = (value: number) => plot.top + (1 - value / lrMax) * plot.height;

    // Grid and axes.
    context.strokeStyle = colors.grid;
    context.fillStyle = colors.text;
    context.lineWidth = 1;
    context.textBaseline = 'middle';
    for (const value of lossTicks) {
      const y = yLoss(value);
      context.beginPath();
      context.moveTo(plot.left, y);
      context.lineTo(plot.left + plot.width, y);
      context.stroke();
      context.textAlign = 'right';
      context.fillText(formatNumber(value), plot.left - 6, y);
    }
    context.textAlign = 'left';
    for (const value of lrTicks) {
      context.fillText(value === 0 ? '0' : value.toExponential(0), plot.left + plot.width + 6, yLr(value));
    }
    context.textAlign = 'center';
    context.textBaseline = 'top';
    const xTicks = Math.min(lastStep, 6);
    for (let i = 0; i <= xTicks; i++) {
      const step = Math.round(1 + ((lastStep - 1) * i) / Math.max(1, xTicks));
      context.fillText(String(step), x(step), plot.top + plot.height + 6);
    }

    // Diagnostics first, under the lines.
    for (const marker of this.markers) {
      const markerX = x(marker.step);
      context.strokeStyle = marker.severity === 'error' ? colors.error : colors.warning;
      context.setLineDash([4, 3]);
      context.beginPath();
      context.moveTo(markerX, plot.top);
      context.lineTo(markerX, plot.top + plot.height);
      context.stroke();
      context.setLineDash([]);
      context.fillStyle = context.strokeStyle;
      context.beginPath();
      context.moveTo(markerX - 5, plot.top);
      context.lineTo(markerX + 5, plot.top);
      context.lineTo(markerX, plot.top + 8);
      context.fill();
    }

    const line = (points: Point[], y: (value: number) => number, stroke: string, dash: number[] = []) => {
      const finite = points.filter((p) => Number.isFinite(p.value));
      context.strokeStyle = stroke;
      context.lineWidth = 2;
      context.setLineDash(dash);
      context.beginPath();
      for (const [i, p] of finite.entries()) {
        if (i === 0) context.moveTo(x(p.step), y(p.value));
        else context.lineTo(x(p.step), y(p.value));
      }
      context.stroke();
      context.setLineDash([]);
      return finite.length;
    };
    const dots = (points: Point[], y: (value: number) => number, fill: string, radius: number) => {
      context.fillStyle = fill;
      for (const p of points) {
        if (!Number.isFinite(p.value)) continue;
        context.beginPath();
        context.arc(x(p.step), y(p.value), radius, 0, 2 * Math.PI);
        context.fill();
      }
    };
    line(this.learningRate, yLr, colors.lr, [6, 4]);
    const drawnLoss = line(this.loss, yLoss, colors.loss);
    if (this.loss.length <= 60) dots(this.loss, yLoss, colors.loss, 2.5);
    line(this.evalLoss, yLoss, colors.eval);
    dots(this.evalLoss, yLoss, colors.eval, 4);

    canvas.dataset.lossPoints = String(drawnLoss);
    canvas.dataset.evalPoints = String(this.evalLoss.length);
    canvas.dataset.markers = String(this.markers.length);
    const last = this.loss[this.loss.length - 1];
    canvas.setAttribute(
      'aria-label',
      last
        ? `Training chart: ${this.loss.length} steps of ${this.totalSteps}, loss from ${formatNumber(this.loss[0].value)} to ${formatNumber(last.value)}` +
            (this.evalLoss.length > 0
              ? `, last eval loss ${formatNumber(this.evalLoss[this.evalLoss.length - 1].value)}`
              : '') +
            (this.markers.length > 0 ? `, ${this.markers.length} diagnostics` : '')
        : 'Training chart: no steps yet',
    );
  }
}
