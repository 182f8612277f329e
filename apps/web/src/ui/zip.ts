import { zipSync } from 'fflate';
import type { ExportedFile } from '../engine/protocol.js';

/**
 * Files as one zip archive (fflate). Weights hardly compress, so files of a megabyte or more are
 * stored as they are and only the small ones (JSON, tokenizer, Modelfile) are deflated.
 */
export function zipFiles(files: readonly ExportedFile[]): Uint8Array {
  const entries: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const file of files) {
    entries[file.name] = [file.bytes, { level: file.bytes.length >= 1 << 20 ? 0 : 6 }];
  }
  return zipSync(entries);
}
