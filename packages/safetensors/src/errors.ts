/**
 * Raised for malformed safetensors files and bad arguments. The message names the file (when
 * known), the tensor (when one is at fault) and what is wrong; the same facts are fields.
 */
export class SafetensorsError extends Error {
  readonly fileName: string | undefined;
  readonly tensorName: string | undefined;

  constructor(problem: string, where: { fileName?: string; tensorName?: string } = {}) {
    const prefix = [
      where.fileName === undefined ? undefined : where.fileName,
      where.tensorName === undefined ? undefined : `tensor ${JSON.stringify(where.tensorName)}`,
    ]
      .filter((part) => part !== undefined)
      .join(': ');
    super(prefix === '' ? problem : `${prefix}: ${problem}`);
    this.name = 'SafetensorsError';
    this.fileName = where.fileName;
    this.tensorName = where.tensorName;
  }
}
