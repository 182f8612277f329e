/** Where a problem sits in an input file: the file and the 1-based line its record starts on. */
export interface FileLocation {
  file: string;
  line?: number;
}

/**
 * An evaluation input or setting that cannot be used. When the cause is a file, `file` and `line`
 * say where, and the message starts with `file:line:` so a terminal makes it clickable.
 */
export class EvaluationError extends Error {
  readonly file?: string;
  readonly line?: number;

  constructor(message: string, location?: FileLocation) {
    const where = location
      ? `${location.file}${location.line !== undefined ? `:${location.line}` : ''}: `
      : '';
    super(`${where}${message}`);
    this.name = 'EvaluationError';
    this.file = location?.file;
    this.line = location?.line;
  }
}
