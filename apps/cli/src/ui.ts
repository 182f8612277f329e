/** Terminal output helpers: colours only on a terminal (and never with NO_COLOR). */

/** Whether `stream` gets colours: a terminal, and NO_COLOR unset (FORCE_COLOR=1 forces them). */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR === '1') return true;
  return Boolean(stream.isTTY);
}

const paint =
  (code: number) =>
  (text: string, stream: NodeJS.WriteStream = process.stdout) =>
    useColor(stream) ? `\u001b[${code}m${text}\u001b[0m` : text;
export const bold = paint(1);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const cyan = paint(36);

/** An error the user can fix: printed as one line, no stack trace, exit code `exitCode`. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** Exit codes of every command. */
export const EXIT = {
  ok: 0,
  /** The work failed (bad file contents, a model that does not load, a device error). */
  failure: 1,
  /** The command line is wrong (unknown option, missing argument, unknown config key). */
  usage: 2,
  /** Stopped by Ctrl-C (SIGINT) after saving what could be saved. */
  interrupted: 130,
} as const;

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `1h02m`, `3m05s`, `12s`, `0.4s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

/** A number in few characters: 0.000123 -> 1.23e-4, 1234.5 -> 1235, 2.5 -> 2.500. */
export function formatNumber(value: number, digits = 4): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude < 1e-3 || magnitude >= 1e6) return value.toExponential(digits - 2);
  if (magnitude >= 1000) return value.toFixed(0);
  return value.toPrecision(digits);
}

const BLOCKS = '▁▂▃▄▅▆▇█';

/** A sparkline of the last `width` values (min..max of those values mapped onto eight blocks). */
export function sparkline(values: readonly number[], width = 30): string {
  const shown = values.slice(-width).filter((v) => Number.isFinite(v));
  if (shown.length === 0) return '';
  const low = Math.min(...shown);
  const high = Math.max(...shown);
  const span = high - low || 1;
  return shown.map((v) => BLOCKS[Math.min(7, Math.floor(((v - low) / span) * 8))]).join('');
}

/** `[#########.........]` of `width` characters for a fraction in [0, 1]. */
export function bar(fraction: number, width = 24): string {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(clamped * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

/**
 * A one-line progress bar on stderr for long work: redrawn in place on a terminal, silent
 * otherwise (logs stay clean; the command prints its result when done).
 */
export class ProgressBar {
  private readonly live: boolean;
  private lastDraw = 0;
  private drawn = false;
  private readonly started = Date.now();

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.live = Boolean(stream.isTTY) && !process.env.WEBTUNE_NO_PROGRESS;
  }

  /** Shows `done` of `total` (throttled to 10 redraws per second). */
  update(done: number, total: number, detail = ''): void {
    if (!this.live) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const fraction = total > 0 ? done / total : 0;
    const elapsed = (now - this.started) / 1000;
    const eta = fraction > 0 ? (elapsed / fraction) * (1 - fraction) : Number.NaN;
    const line = `${this.label} ${bar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}% ${detail}${
      fraction > 0 && fraction < 1 ? ` ETA ${formatDuration(eta)}` : ''
    }`;
    this.stream.write(`\r\u001b[2K${line.slice(0, (this.stream.columns || 100) - 1)}`);
    this.drawn = true;
  }

  /** Clears the bar line. */
  done(): void {
    if (this.live && this.drawn) this.stream.write('\r\u001b[2K');
    this.drawn = false;
  }
}

const ESCAPE = String.fromCharCode(27);
const ANSI_SEQUENCE = new RegExp(`${ESCAPE}\\[[0-9;]*[A-Za-z]`, 'g');

/** `text` without terminal colour and cursor sequences. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_SEQUENCE, '');
}

/** Control characters and undecodable bytes (U+FFFD) as a middle dot, for showing raw model output. */
export function printable(text: string): string {
  let out = '';
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    out += code < 32 || (code >= 127 && code < 160) || code === 0xfffd ? '·' : character;
  }
  return out;
}

/**
 * Collapses an error message to one line that is safe for a terminal: control characters (ESC
 * sequences from a file's bytes, C1 controls) and bidirectional overrides become visible escapes.
 */
export function oneLine(message: string): string {
  return escapeControls(
    message
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .join('; '),
  );
}

/** Control characters (tab kept), DEL, C1 and bidirectional overrides as `\x1b` / `\u202e`. */
export function escapeControls(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is looked for.
    /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (character) => {
      const code = character.charCodeAt(0);
      return code < 0x100
        ? `\\x${code.toString(16).padStart(2, '0')}`
        : `\\u${code.toString(16).padStart(4, '0')}`;
    },
  );
}
