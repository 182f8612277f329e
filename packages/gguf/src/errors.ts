/**
 * Raised for malformed GGUF files, unsupported contents and bad arguments. The message names the
 * file (when known), the tensor or metadata key at fault (when one is) and what is wrong; the same
 * facts are fields, with the byte offset where reading stopped when the header was at fault.
 */
export class GgufError extends Error {
  readonly fileName: string | undefined;
  readonly tensorName: string | undefined;
  readonly key: string | undefined;
  readonly offset: number | undefined;

  constructor(
    problem: string,
    where: { fileName?: string; tensorName?: string; key?: string; offset?: number } = {},
  ) {
    const prefix = [
      where.fileName,
      where.tensorName === undefined ? undefined : `tensor ${JSON.stringify(where.tensorName)}`,
      where.key === undefined ? undefined : `key ${JSON.stringify(where.key)}`,
    ]
      .filter((part) => part !== undefined)
      .join(': ');
    const at = where.offset === undefined ? '' : ` (at byte ${where.offset})`;
    super(`${prefix === '' ? '' : `${prefix}: `}${problem}${at}`);
    this.name = 'GgufError';
    this.fileName = where.fileName;
    this.tensorName = where.tensorName;
    this.key = where.key;
    this.offset = where.offset;
  }
}
