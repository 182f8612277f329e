/**
 * Renders the trainer's events: a live dashboard redrawn in place on a terminal (progress bar,
 * loss with a sparkline, learning rate, tokens/s, memory, ETA, diagnostics), plain lines
 * otherwise (logs, CI, pipes).
 */
import type { TrainerEvent } from '@webtune/train';
import {
  bar,
  bold,
  cyan,
  dim,
  formatDuration,
  formatNumber,
  green,
  red,
  sparkline,
  stripAnsi,
  yellow,
} from '../ui.js';

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export interface DashboardOptions {
  /** Redraw in place (a terminal) or print lines. */
  live: boolean;
  /** Plain mode prints a step line every this many steps (and the first and last). */
  loggingSteps: number;
  stream?: NodeJS.WriteStream;
  /** A line under the title: model, method, data. */
  subtitle?: string;
}

export interface Dashboard {
  handle(event: TrainerEvent): void;
  /** A message kept above the live block (or printed as a line). */
  note(text: string): void;
  /** Stops redrawing; leaves the last frame on screen. */
  close(): void;
}

interface State {
  step: number;
  totalSteps: number;
  epoch: number;
  losses: number[];
  learningRate: number;
  gradNorm: number;
  tokensPerSecond: number;
  liveBytes: number;
  peakBytes: number;
  elapsedMs: number;
  remainingMs: number;
  evalLoss: number | null;
  evalStep: number | null;
  metrics: Record<string, number>;
  diagnostics: string[];
  stopping: boolean;
}

export function createDashboard(options: DashboardOptions): Dashboard {
  const stream = options.stream ?? process.stdout;
  const state: State = {
    step: 0,
    totalSteps: 0,
    epoch: 0,
    losses: [],
    learningRate: 0,
    gradNorm: 0,
    tokensPerSecond: 0,
    liveBytes: 0,
    peakBytes: 0,
    elapsedMs: 0,
    remainingMs: Number.NaN,
    evalLoss: null,
    evalStep: null,
    metrics: {},
    diagnostics: [],
    stopping: false,
  };
  let drawnLines = 0;
  let lastDraw = 0;
  let closed = false;
  const paint = (f: (text: string, s?: NodeJS.WriteStream) => string) => (text: string) => f(text, stream);

  const frame = (): string[] => {
    const fraction = state.totalSteps > 0 ? state.step / state.totalSteps : 0;
    const width = Math.max(20, Math.min(40, (stream.columns || 80) - 60));
    const lines = [
      `${paint(bold)('step')} ${state.step}/${state.totalSteps} ${paint(cyan)(bar(fraction, width))} ${(fraction * 100).toFixed(0).padStart(3)}%  ` +
        `epoch ${state.epoch.toFixed(2)}  elapsed ${formatDuration(state.elapsedMs / 1000)}  ETA ${formatDuration(state.remainingMs / 1000)}`,
      `${paint(bold)('loss')} ${state.losses.length > 0 ? formatNumber(state.losses[state.losses.length - 1]) : '--'}  ${paint(green)(sparkline(state.losses, 40))}` +
        (state.evalLoss !== null
          ? `  ${paint(bold)('eval')} ${formatNumber(state.evalLoss)} (step ${state.evalStep})`
          : ''),
      `lr ${formatNumber(state.learningRate, 3)}  grad norm ${formatNumber(state.gradNorm, 3)}  ${Math.round(state.tokensPerSecond)} tokens/s  ` +
        `memory ${formatBytes(state.liveBytes)} (peak ${formatBytes(state.peakBytes)})`,
    ];
    const metricNames = Object.keys(state.metrics);
    if (metricNames.length > 0) {
      lines.push(metricNames.map((name) => `${name} ${formatNumber(state.metrics[name], 3)}`).join('  '));
    }
    for (const diagnostic of state.diagnostics.slice(-2)) lines.push(paint(yellow)(diagnostic));
    if (state.stopping)
      lines.push(
        paint(yellow)('stopping: a checkpoint is saved after this step (Ctrl-C again quits at once)'),
      );
    return lines;
  };
  // Rows a line takes on the terminal (long lines wrap), so the block can be redrawn in place.
  const rowsOf = (line: string) => {
    const visible = stripAnsi(line).length;
    return Math.max(1, Math.ceil(visible / (stream.columns || 80)));
  };

  const clear = () => {
    if (drawnLines > 0) stream.write(`\u001b[${drawnLines}A\r\u001b[0J`);
    drawnLines = 0;
  };
  const draw = (force = false) => {
    if (!options.live || closed) return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    clear();
    const lines = frame();
    stream.write(`${lines.join('\n')}\n`);
    drawnLines = lines.reduce((total, line) => total + rowsOf(line), 0);
  };
  const print = (text: string) => {
    if (options.live && !closed) {
      clear();
      stream.write(`${text}\n`);
      draw(true);
    } else {
      stream.write(`${text}\n`);
    }
  };

  return {
    handle(event) {
      switch (event.type) {
        case 'train-start': {
          state.totalSteps = event.totalSteps;
          state.step = event.firstStep - 1;
          const resumed = event.resumedFrom ? `, resumed from ${event.resumedFrom}` : '';
          // A stream (trainRows -1) has no row count or epoch: its rows are read as steps need them.
          const rows =
            event.trainRows < 0
              ? 'rows streamed'
              : `(${event.stepsPerEpoch} per epoch), ${event.trainRows} train rows`;
          print(
            `training: ${event.totalSteps} steps ${rows}, ` +
              `${event.validationRows} validation rows, ${event.trainableParameters.toLocaleString('en-US')} trainable parameters${resumed}`,
          );
          draw(true);
          break;
        }
        case 'step-end': {
          Object.assign(state, {
            step: event.step,
            totalSteps: event.totalSteps,
            epoch: event.epoch,
            learningRate: event.learningRate,
            gradNorm: event.gradNorm,
            tokensPerSecond: event.tokensPerSecond,
            liveBytes: event.memory.liveBytes,
            peakBytes: event.memory.peakBytes,
            elapsedMs: event.elapsedMs,
            remainingMs: event.remainingMs,
            metrics: event.metrics,
          });
          state.losses.push(event.loss);
          if (options.live) draw(event.step === event.totalSteps);
          else if (
            event.step === 1 ||
            event.step % options.loggingSteps === 0 ||
            event.step === event.totalSteps
          ) {
            const metrics = Object.entries(event.metrics)
              .map(([name, value]) => ` ${name} ${formatNumber(value, 3)}`)
              .join('');
            print(
              `step ${event.step}/${event.totalSteps} (${((event.step / event.totalSteps) * 100).toFixed(0)}%) loss ${formatNumber(event.loss)} ` +
                `lr ${formatNumber(event.learningRate, 3)} grad_norm ${formatNumber(event.gradNorm, 3)} ${Math.round(event.tokensPerSecond)} tokens/s ` +
                `memory ${formatBytes(event.memory.liveBytes)} elapsed ${formatDuration(event.elapsedMs / 1000)} ETA ${formatDuration(event.remainingMs / 1000)}${metrics}`,
            );
          }
          break;
        }
        case 'eval-end': {
          state.evalLoss = event.evalLoss;
          state.evalStep = event.step;
          const metrics = Object.entries(event.metrics)
            .map(([name, value]) => ` ${name} ${formatNumber(value, 3)}`)
            .join('');
          print(
            `eval at step ${event.step}: eval_loss ${formatNumber(event.evalLoss)}${metrics} (${formatDuration(event.durationMs / 1000)})`,
          );
          break;
        }
        case 'checkpoint-saved':
          print(
            paint(dim)(
              `checkpoint saved: ${event.path}${event.removed.length > 0 ? ` (removed ${event.removed.join(', ')})` : ''}`,
            ),
          );
          break;
        case 'diagnostic-raised': {
          const { diagnostic } = event;
          const label = diagnostic.severity === 'error' ? paint(red)('error') : paint(yellow)('warning');
          const text = `${label} at step ${diagnostic.step} (${diagnostic.kind}): ${diagnostic.message} ${diagnostic.advice}`;
          state.diagnostics.push(`${diagnostic.kind} at step ${diagnostic.step}: ${diagnostic.message}`);
          print(text);
          break;
        }
        case 'train-end':
          state.step = event.step;
          state.elapsedMs = event.elapsedMs;
          state.remainingMs = 0;
          state.stopping = false;
          draw(true);
          break;
      }
    },
    note(text) {
      if (text.startsWith('stopping')) {
        state.stopping = true;
        if (options.live) {
          draw(true);
          return;
        }
      }
      print(text);
    },
    close() {
      draw(true);
      closed = true;
    },
  };
}
