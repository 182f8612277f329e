/** The loss curve of a run as a standalone SVG: train loss per step, a smoothed line, eval loss points. */

export interface LossCurve {
  /** Train loss by step. */
  train: { step: number; loss: number }[];
  /** Eval loss by step. */
  eval: { step: number; loss: number }[];
  title?: string;
}

const WIDTH = 720;
const HEIGHT = 400;
const MARGIN = { left: 64, right: 24, top: 40, bottom: 48 };

function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

/** Round tick values covering [low, high]: 1, 2 or 5 times a power of ten apart. */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const rough = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

/** Exponential moving average, as TensorBoard smooths (weight 0.9 for long runs). */
export function smooth(values: readonly number[], weight: number): number[] {
  const out: number[] = [];
  let last = values[0] ?? 0;
  for (const value of values) {
    last = last * weight + value * (1 - weight);
    out.push(last);
  }
  return out;
}

/** Renders the curve; an empty run gives a chart that says so. */
export function lossCurveSvg(curve: LossCurve): string {
  const points = [...curve.train, ...curve.eval].filter((p) => Number.isFinite(p.loss));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(curve.title ?? 'training loss')}</text>`,
  );
  if (points.length === 0) {
    parts.push(
      `<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle" fill="#666">no steps logged</text>`,
      '</svg>',
    );
    return `${parts.join('\n')}\n`;
  }
  const steps = points.map((p) => p.step);
  const losses = points.map((p) => p.loss);
  const stepLow = Math.min(...steps, 0);
  const stepHigh = Math.max(...steps, 1);
  let lossLow = Math.min(...losses);
  let lossHigh = Math.max(...losses);
  if (lossHigh - lossLow < 1e-9) {
    lossLow -= 0.5;
    lossHigh += 0.5;
  }
  const pad = (lossHigh - lossLow) * 0.05;
  lossLow = Math.max(0, lossLow - pad);
  lossHigh += pad;
  const x = (step: number) => MARGIN.left + ((step - stepLow) / (stepHigh - stepLow)) * plotWidth;
  const y = (loss: number) => MARGIN.top + (1 - (loss - lossLow) / (lossHigh - lossLow)) * plotHeight;
  const format = (value: number) => Number(value.toFixed(2)).toString();

  // Axes, grid and ticks.
  for (const tick of niceTicks(lossLow, lossHigh)) {
    const ty = y(tick).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" y1="${ty}" x2="${WIDTH - MARGIN.right}" y2="${ty}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 8}" y="${ty}" text-anchor="end" dominant-baseline="middle" fill="#444">${Number(tick.toPrecision(6))}</text>`,
    );
  }
  for (const tick of niceTicks(stepLow, stepHigh).filter((t) => Number.isInteger(t))) {
    const tx = x(tick).toFixed(1);
    parts.push(
      `<line x1="${tx}" y1="${HEIGHT - MARGIN.bottom}" x2="${tx}" y2="${HEIGHT - MARGIN.bottom + 5}" stroke="#444"/>`,
      `<text x="${tx}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle" fill="#444">${tick}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${HEIGHT - MARGIN.bottom}" stroke="#444"/>`,
    `<line x1="${MARGIN.left}" y1="${HEIGHT - MARGIN.bottom}" x2="${WIDTH - MARGIN.right}" y2="${HEIGHT - MARGIN.bottom}" stroke="#444"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 10}" text-anchor="middle" fill="#444">step</text>`,
    `<text x="16" y="${MARGIN.top + plotHeight / 2}" text-anchor="middle" fill="#444" transform="rotate(-90 16 ${MARGIN.top + plotHeight / 2})">loss</text>`,
  );

  // Train loss (raw, faint) and smoothed.
  const train = curve.train.filter((p) => Number.isFinite(p.loss));
  if (train.length > 0) {
    const path = (values: readonly number[]) =>
      train
        .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(values[i]).toFixed(1)}`)
        .join(' ');
    const raw = train.map((p) => p.loss);
    parts.push(
      `<path class="train-loss" d="${path(raw)}" fill="none" stroke="#1f77b4" stroke-opacity="0.35" stroke-width="1.2"/>`,
    );
    if (train.length >= 10) {
      const weight = Math.min(0.9, 1 - 4 / train.length);
      parts.push(
        `<path class="train-loss-smoothed" d="${path(smooth(raw, weight))}" fill="none" stroke="#1f77b4" stroke-width="2"/>`,
      );
    }
  }
  // Eval loss as connected points.
  const evals = curve.eval.filter((p) => Number.isFinite(p.loss));
  if (evals.length > 0) {
    parts.push(
      `<path class="eval-loss" d="${evals.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ')}" fill="none" stroke="#d62728" stroke-width="1.5"/>`,
    );
    for (const p of evals)
      parts.push(
        `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.loss).toFixed(1)}" r="3" fill="#d62728"><title>step ${p.step}: eval loss ${format(p.loss)}</title></circle>`,
      );
  }
  // Legend.
  const legendX = WIDTH - MARGIN.right - 130;
  parts.push(
    `<line x1="${legendX}" y1="${MARGIN.top + 8}" x2="${legendX + 20}" y2="${MARGIN.top + 8}" stroke="#1f77b4" stroke-width="2"/>`,
    `<text x="${legendX + 26}" y="${MARGIN.top + 12}">train loss</text>`,
  );
  if (evals.length > 0) {
    parts.push(
      `<line x1="${legendX}" y1="${MARGIN.top + 26}" x2="${legendX + 20}" y2="${MARGIN.top + 26}" stroke="#d62728" stroke-width="2"/>`,
      `<text x="${legendX + 26}" y="${MARGIN.top + 30}">eval loss</text>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
