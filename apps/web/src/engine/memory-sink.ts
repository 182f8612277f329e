import type { ModelFileSink } from '@webtune/nn';
import type { ExportedFile } from './protocol.js';

/** A ModelFileSink that keeps what is written, in order, for a download. */
export function memorySink(): ModelFileSink & { files: ExportedFile[] } {
  const files: ExportedFile[] = [];
  const encoder = new TextEncoder();
  return {
    files,
    async writeFile(name, contents) {
      files.push({ name, bytes: typeof contents === 'string' ? encoder.encode(contents) : contents });
    },
  };
}
