/**
 * JSON text as Python's `json.dumps(value, ensure_ascii=False)` writes it, which is what Transformers'
 * `tojson` filter gives chat templates: `", "` and `": "` separators, non-ASCII kept, key order kept;
 * with `indent`, items on their own lines and `","` separators.
 */
export function pythonJsonDumps(value: unknown, indent?: number): string {
  return dump(value, indent, 0);
}

function dump(value: unknown, indent: number | undefined, depth: number): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
    return JSON.stringify(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  const open = Array.isArray(value) ? '[' : '{';
  const close = Array.isArray(value) ? ']' : '}';
  const items = Array.isArray(value)
    ? value.map((item) => dump(item, indent, depth + 1))
    : Object.entries(value as Record<string, unknown>)
        .filter(([, item]) => item !== undefined)
        .map(([key, item]) => `${JSON.stringify(key)}: ${dump(item, indent, depth + 1)}`);
  if (items.length === 0) return open + close;
  if (indent === undefined) return open + items.join(', ') + close;
  const inner = '\n' + ' '.repeat(indent * (depth + 1));
  return open + inner + items.join(',' + inner) + '\n' + ' '.repeat(indent * depth) + close;
}

function isPythonSpace(character: string): boolean {
  if (character === '\ufeff') return false;
  return /\s/.test(character) || (character >= '\x1c' && character <= '\x1f') || character === '\x85';
}

/** Python's `str.strip()` (Jinja's `trim`): strips Unicode whitespace, but not U+FEFF. */
export function pythonStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isPythonSpace(text[start])) start++;
  while (end > start && isPythonSpace(text[end - 1])) end--;
  return text.slice(start, end);
}

/** Python's `str.lstrip(characters)`, `rstrip` or `strip`, for the given side(s). */
export function stripCharacters(text: string, characters: string, side: 'left' | 'right' | 'both'): string {
  let start = 0;
  let end = text.length;
  if (side !== 'right') while (start < end && characters.includes(text[start])) start++;
  if (side !== 'left') while (end > start && characters.includes(text[end - 1])) end--;
  return text.slice(start, end);
}
