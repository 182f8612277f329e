import { readFileSync } from 'node:fs';

/** The CLI's version (from its package.json, one folder above dist/). */
export function version(): string {
  try {
    const json = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    return String(json.version);
  } catch {
    return '0.0.0';
  }
}
