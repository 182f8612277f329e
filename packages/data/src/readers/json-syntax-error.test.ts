import { describe, expect, it } from 'vitest';
import { jsonSyntaxErrorOffset } from './json-syntax-error.js';

describe('jsonSyntaxErrorOffset', () => {
  it('finds the offset JSON.parse leaves out, and agrees with it where it gives one', () => {
    // V8 says only "Unexpected token 'x' ... is not valid JSON" here.
    expect(jsonSyntaxErrorOffset('[{"a": x}]')).toBe(7);
    expect(jsonSyntaxErrorOffset('[\n  {"a": 1},\n  {"b": tru}\n]')).toBe(25);
    for (const text of ['[{"a": 1,}]', '[{"a": 1}', '[{"a": "b}]', '[1 2]', '[{"a":1}]]', '[01]']) {
      let position: number | null = null;
      try {
        JSON.parse(text);
      } catch (error) {
        const match = /position (\d+)/.exec((error as Error).message);
        position = match ? Number(match[1]) : null;
      }
      if (position !== null) expect(jsonSyntaxErrorOffset(text), text).toBe(position);
      else expect(jsonSyntaxErrorOffset(text), text).not.toBeNull();
    }
  });

  it('accepts valid JSON of every kind', () => {
    for (const text of ['[]', '{}', ' [1, -2.5e3, "a\\u00e9\\n", true, false, null, {"k": [{}]}] ', '"x"']) {
      expect(jsonSyntaxErrorOffset(text), text).toBeNull();
    }
  });
});
