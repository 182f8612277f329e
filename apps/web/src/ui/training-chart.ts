import type { TrainerLogRow } from '@webtune/train';
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

const MARGIN = { left: 66, right: 72, top: 14, bottom: 44 };

/**
 * Labels for tick values, each distinct: the fewest significant digits that tell them apart
 * (2e-4 and 2.5e-4 are not both "2e-4").
 */
export function tickLabels(values: readonly number[], exponential: boolean): string[] {
  for (let digits = 0; digits <= 6; digits++) {
    const labels = values.map((value) =>
      value === 0
        ? '0'
        : exponential
          ? value.toExponential(digits)
          : Number(value.toFixed(digits)).toString(),
    );
    if (new Set(labels).size === labels.length) return labels;
  }
  return values.map(String);
}

/** Whole-step ticks from 1 to `lastStep`, evenly spaced by a round interval (1, 2, 5 x 10^k). */
export function stepTicks(lastStep: number, count: number): number[] {
  if (lastStep <= 1) return [1];
  const raw = (lastStep - 1) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
  const interval = Math.max(
    1,
    [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= raw) ?? 10 * power,
  );
  const ticks: number[] = [];
  // Multiples of the interval (and step 1), so the spacing is even.
  for (let step = interval; step <= lastStep; step += interval) ticks.push(step);
  if (ticks[0] !== 1) ticks.unshift(1);
  return ticks;
}

/**
 * The smoothed loss curve: an exponential moving average whose weight grows with the number of
 * points (LLaMA-Factory's plot smooths the same way), so short runs stay close to the raw values.
 */
export function smoothLoss(values: readonly number[]): number[] {
  if (values.length === 0) return [];
  const weight = 1.8 * (1 / (1 + Math.exp(-0.05 * values.length)) - 0.5);
  const smoothed: number[] = [];
  let last = values[0];
  for (const value of values) {
    last = last * weight + (1 - weight) * value;
    smoothed.push(last);
  }
  return smoothed;
}

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
      h('li', { class: 'legend-smoothed' }, 'smoothed loss'),
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

  /** Draws a run's past from its trainer_log.jsonl rows (after a reload). */
  loadHistory(rows: readonly TrainerLogRow[]): void {
    this.reset(rows[rows.length - 1]?.total_steps ?? 1);
    for (const row of rows) {
      if (typeof row.eval_loss === 'number') this.addEval(row.current_steps, row.eval_loss);
      else this.addStep(row.current_steps, row.loss, row.lr);
    }
  }

  /** Sets the step count without clearing (a resumed run). */
  setTotalSteps(totalSteps: number): void {
    this.totalSteps = Math.max(1, totalSteps);
    this.schedule();
  }

  addStep(step: number, loss: number, learningRate: number): void {
    // A step drawn before (history from the log, then the resumed run) is replaced, not doubled.
    if (this.loss.some((point) => point.step >= step)) {
      this.loss = this.loss.filter((point) => point.step < step);
      this.learningRate = this.learningRate.filter((point) => point.step < step);
      for (const row of this.tableBody.querySelectorAll('tr')) {
        if (Number((row as HTMLElement).dataset.step) >= step) row.remove();
      }
    }
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
    const lrValues = this.learningRate.map((p) => p.value).filter((value) => value > 0);
    // No learning rate yet (or all 0): no right axis, rather than ticks of 1e-12.
    const lrTicks = lrValues.length > 0 ? niceTicks(0, Math.max(...lrValues), 4) : [];
    const lrMax = lrTicks[lrTicks.length - 1] ?? 1;
    const x = (step: number) =>
      plot.left + (lastStep <= 1 ? plot.width / 2 : ((step - 1) / (lastStep - 1)) * plot.width);
    const yLoss = (value: number) => plot.top + (1 - (value - low) / (high - low)) * plot.height;
    const yLr = (value: number) => plot.top + (1 - value / lrMax) * plot.height;

    // Grid and axes.
    context.strokeStyle = colors.grid;
    context.fillStyle = colors.text;
    context.lineWidth = 1;
    context.textBaseline = 'middle';
    const lossLabels = tickLabels(lossTicks, false);
    for (const [i, value] of lossTicks.entries()) {
      const y = yLoss(value);
      context.beginPath();
      context.moveTo(plot.left, y);
      context.lineTo(plot.left + plot.width, y);
      context.stroke();
      context.textAlign = 'right';
      context.fillText(lossLabels[i], plot.left - 6, y);
    }
    context.textAlign = 'left';
    const lrLabels = tickLabels(lrTicks, true);
    for (const [i, value] of lrTicks.entries()) {
      context.fillText(lrLabels[i], plot.left + plot.width + 6, yLr(value));
    }
    context.textAlign = 'center';
    context.textBaseline = 'top';
    const xTicks = stepTicks(lastStep, Math.max(2, Math.floor(plot.width / 70)));
    for (const step of xTicks) context.fillText(String(step), x(step), plot.top + plot.height + 6);
    // Axis titles.
    context.fillText('step', plot.left + plot.width / 2, plot.top + plot.height + 24);
    const verticalTitle = (text: string, titleX: number) => {
      context.save();
      context.translate(titleX, plot.top + plot.height / 2);
      context.rotate(-Math.PI / 2);
      context.textBaseline = 'middle';
      context.fillText(text, 0, 0);
      context.restore();
    };
    verticalTitle('loss', 12);
    if (lrTicks.length > 0) verticalTitle('learning rate', width - 10);
    canvas.dataset.xTicks = xTicks.join(' ');
    canvas.dataset.lossTicks = lossLabels.join(' ');
    canvas.dataset.lrTicks = lrLabels.join(' ');
    canvas.dataset.axisTitles = ['step', 'loss', ...(lrTicks.length > 0 ? ['learning rate'] : [])].join('|');

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
    // The raw loss faint, the smoothed loss over it.
    context.globalAlpha = 0.35;
    const drawnLoss = line(this.loss, yLoss, colors.loss);
    if (this.loss.length <= 60) dots(this.loss, yLoss, colors.loss, 2.5);
    context.globalAlpha = 1;
    const finiteLoss = this.loss.filter((p) => Number.isFinite(p.value));
    const smoothed = smoothLoss(finiteLoss.map((p) => p.value)).map((value, i) => ({
      step: finiteLoss[i].step,
      value,
    }));
    canvas.dataset.smoothedPoints = String(line(smoothed, yLoss, colors.loss));
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
