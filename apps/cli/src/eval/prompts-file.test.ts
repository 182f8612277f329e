// The parsing behind `webtune eval ab` and `webtune eval judge`: prompts files, typed votes and
// judge URLs. No model, no subprocess.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../ui.js';
import { parseVoteInput } from './ab.js';
import { judgeBaseUrl } from './judge.js';
import { parsePrompts } from './prompts-file.js';

function errorOf(run: () => unknown): UsageError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('prompts files', () => {
  it('reads a text file as one prompt a line, blank lines skipped', () => {
    expect(parsePrompts('Tell me a story\n\n  What is the sun?  \r\nWho are you?', 'p.txt')).toEqual([
      'Tell me a story',
      'What is the sun?',
      'Who are you?',
    ]);
  });

  it('reads JSON Lines of strings, prompts, alpaca rows and OpenAI messages', () => {
    const text = [
      JSON.stringify('plain'),
      JSON.stringify({ prompt: 'from prompt' }),
      JSON.stringify({ instruction: 'Translate', input: 'bonjour', output: 'hello' }),
      JSON.stringify({ instruction: 'Alone', system: 'Be brief.' }),
      '',
      JSON.stringify({
        messages: [
          { role: 'system', content: 'You are kind.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Tell me more' },
        ],
      }),
    ].join('\n');
    expect(parsePrompts(text, 'p.jsonl')).toEqual([
      'plain',
      'from prompt',
      'Translate\nbonjour',
      { system: 'Be brief.', turns: [{ role: 'user', content: 'Alone' }] },
      {
        system: 'You are kind.',
        turns: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Tell me more' },
        ],
      },
    ]);
  });

  it('reads a JSON array', () => {
    expect(parsePrompts('["a", {"prompt": "b"}]', 'p.json')).toEqual(['a', 'b']);
  });

  it('names the file and line of a bad row (exit 1)', () => {
    const bad = errorOf(() => parsePrompts('"ok"\n{"prompt": 3}\n', 'data/p.jsonl'));
    expect(bad.exitCode).toBe(1);
    expect(bad.message).toBe(
      'data/p.jsonl:2: expected a string, {"prompt"}, {"instruction", "input"} or {"messages"} ending with a user message',
    );
    expect(errorOf(() => parsePrompts('"ok"\n{oops\n', 'p.jsonl')).message).toMatch(
      /^p\.jsonl:2: not valid JSON: /,
    );
    expect(
      errorOf(() =>
        parsePrompts(
          JSON.stringify({
            messages: [
              { role: 'user', content: 'Hi' },
              { role: 'assistant', content: 'Hello' },
            ],
          }),
          'p.jsonl',
        ),
      ).message,
    ).toBe('p.jsonl:1: the messages must end with a user message');
    expect(errorOf(() => parsePrompts('{"prompt": "x"}', 'p.json')).message).toBe(
      'p.json: expected a JSON array of prompts',
    );
    expect(errorOf(() => parsePrompts('["x", "  "]', 'p.json')).message).toBe(
      'p.json: item 1: the prompt is empty',
    );
  });
});

describe('votes', () => {
  it('reads a, b, t and the commands in any case, anything else is invalid', () => {
    expect(
      ['a', ' B ', 't', 'TIE', '=', 's', 'skip', 'q', 'quit', '', 'c', 'ab'].map(parseVoteInput),
    ).toEqual([
      'A',
      'B',
      'tie',
      'tie',
      'tie',
      'skip',
      'skip',
      'quit',
      'quit',
      'invalid',
      'invalid',
      'invalid',
    ]);
  });
});

describe('judge URLs', () => {
  it('keeps a base URL, adds /v1 to a bare host, refuses other schemes', () => {
    expect(judgeBaseUrl('https://api.openai.com/v1/')).toBe('https://api.openai.com/v1');
    expect(judgeBaseUrl('http://127.0.0.1:8000')).toBe('http://127.0.0.1:8000/v1');
    expect(judgeBaseUrl('http://localhost:11434/v1')).toBe('http://localhost:11434/v1');
    expect(errorOf(() => judgeBaseUrl('ftp://example.com')).message).toBe(
      '--judge-url must be an http(s) URL, got "ftp://example.com"',
    );
    const bad = errorOf(() => judgeBaseUrl('localhost:8000'));
    expect(bad.exitCode).toBe(2);
  });
});
