import { describe, expect, it } from 'vitest';
import { describeValue, escapeControlCharacters, formatIssue } from './issues.js';

describe('issue text from user files', () => {
  it('never carries control characters or bidirectional overrides (issue 19)', () => {
    const hostile = 'a\u001b[2J\u001b]0;title\u0007b\u009bc\u202ed\u0000';
    expect(escapeControlCharacters(hostile)).toBe('a\\x1b[2J\\x1b]0;title\\x07b\\x9bc\\u202ed\\x00');
    const text = formatIssue({
      severity: 'error',
      file: 'data\u001b[31m.json',
      field: 'output',
      expected: 'a string',
      got: describeValue({ [hostile]: 1 }),
      detail: `Unexpected token ${hostile}`,
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is looked for.
    expect(text).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(text).toContain('data\\x1b[31m.json');
    expect(escapeControlCharacters('tab\tand é 漢 ok')).toBe('tab\tand é 漢 ok');
  });
});
