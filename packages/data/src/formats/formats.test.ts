import { describe, expect, it } from 'vitest';
import type { DataIssue } from '../issues.js';
import type { DatasetAttributes } from '../registry/dataset-attributes.js';
import { attributesFromRecord } from '../registry/dataset-info.js';
import { checkStage, convertRecord } from './convert.js';
import { detectDescription } from './detect.js';
import type { Stage } from './types.js';

function attributes(description: Record<string, unknown>): DatasetAttributes {
  return attributesFromRecord('test', { file_name: 'test.json', ...description }, (field, expected) => {
    throw new Error(`${field}: ${expected}`);
  });
}

const alpaca = attributes({ columns: { history: 'history', system: 'system' } });
const sharegpt = attributes({
  formatting: 'sharegpt',
  columns: { messages: 'conversations', system: 'system', tools: 'tools' },
});
const openai = attributes({ formatting: 'openai' });

function convert(value: unknown, description: DatasetAttributes, stage: Stage = 'sft', row = 7) {
  return convertRecord(
    { kind: 'row', location: { dataset: 'test', file: 'test.json', row, line: 40 }, value },
    description,
    stage,
  );
}

/** The issue of a rejected row, without the location fields every test shares. */
function rejection(value: unknown, description: DatasetAttributes, stage: Stage = 'sft'): Partial<DataIssue> {
  const result = convert(value, description, stage);
  expect(result.example).toBeUndefined();
  expect(result.issue).toMatchObject({
    severity: 'error',
    dataset: 'test',
    file: 'test.json',
    row: 7,
    line: 40,
  });
  const { field, expected, got } = result.issue!;
  return { field, expected, got };
}

describe('alpaca rows', () => {
  it('joins instruction and input, keeps history and system', () => {
    const result = convert(
      {
        instruction: 'Translate',
        input: 'bonjour',
        output: 'hello',
        system: 'Be brief.',
        history: [['hi', 'hey']],
      },
      alpaca,
    );
    expect(result.example).toEqual({
      kind: 'supervised',
      location: { dataset: 'test', file: 'test.json', row: 7, line: 40 },
      conversation: {
        system: 'Be brief.',
        turns: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hey' },
          { role: 'user', content: 'Translate\nbonjour' },
          { role: 'assistant', content: 'hello' },
        ],
      },
    });
  });

  it('names the missing, empty or mistyped field', () => {
    expect(rejection({ instruction: 'x' }, alpaca)).toEqual({
      field: 'output',
      expected: 'a string',
      got: 'nothing (the field is missing)',
    });
    expect(rejection({ instruction: 'x', output: '' }, alpaca)).toEqual({
      field: 'output',
      expected: 'a non-empty string',
      got: 'an empty string',
    });
    expect(rejection({ instruction: '', input: '', output: 'y' }, alpaca)).toEqual({
      field: 'instruction',
      expected: 'a non-empty string (with input, the user turn)',
      got: 'an empty string',
    });
    expect(rejection({ instruction: 42, output: 'y' }, alpaca)).toEqual({
      field: 'instruction',
      expected: 'a string',
      got: 'a number (42)',
    });
    expect(rejection({ instruction: 'x', output: 'y', history: [['only one']] }, alpaca)).toEqual({
      field: 'history[0]',
      expected: 'a pair [user, assistant] of strings',
      got: 'an array of 1',
    });
    expect(rejection('just a string', alpaca)).toEqual({
      field: '(row)',
      expected: 'a JSON object',
      got: 'a string ("just a string")',
    });
  });

  it('reads preference, KTO and pretraining rows', () => {
    const ranking = attributes({ ranking: true, columns: { chosen: 'chosen', rejected: 'rejected' } });
    expect(
      convert({ instruction: 'q', chosen: 'good', rejected: 'bad' }, ranking, 'dpo').example,
    ).toMatchObject({
      kind: 'preference',
      chosen: { role: 'assistant', content: 'good' },
      rejected: { role: 'assistant', content: 'bad' },
    });
    expect(rejection({ instruction: 'q', chosen: 'good' }, ranking, 'dpo')).toEqual({
      field: 'rejected',
      expected: 'a string',
      got: 'nothing (the field is missing)',
    });
    const kto = attributes({ columns: { kto_tag: 'label' } });
    expect(convert({ instruction: 'q', output: 'a', label: 'false' }, kto, 'kto').example).toMatchObject({
      kind: 'kto',
      desirable: false,
    });
    expect(rejection({ instruction: 'q', output: 'a', label: 'maybe' }, kto, 'kto')).toEqual({
      field: 'label',
      expected: 'true or false',
      got: 'a string ("maybe")',
    });
    const text = attributes({ columns: { prompt: 'text' } });
    expect(convert({ text: 'a document' }, text, 'pt').example).toMatchObject({
      kind: 'pretrain',
      text: 'a document',
    });
    expect(rejection({ text: '   ' }, text, 'pt')).toEqual({
      field: 'text',
      expected: 'a non-empty string (with input, the user turn)',
      got: 'a string of only whitespace',
    });
  });

  it('accepts CSV cells: history as JSON text', () => {
    const result = convert({ instruction: 'q', input: '', output: 'a', history: '[["u", "v"]]' }, alpaca);
    expect(result.example).toMatchObject({
      conversation: { turns: [{ content: 'u' }, { content: 'v' }, { content: 'q' }, { content: 'a' }] },
    });
  });
});

describe('sharegpt rows', () => {
  const turn = (from: string, value: unknown) => ({ from, value });

  it('reads tool calls, observations and a leading system message', () => {
    const result = convert(
      {
        conversations: [
          turn('system', 'Use tools.'),
          turn('human', 'Weather?'),
          turn('function_call', '{"name": "weather", "arguments": {"city": "Oslo"}}'),
          turn('observation', '{"sky": "grey"}'),
          turn('gpt', 'Grey.'),
        ],
        tools: '[{"name": "weather", "description": "d", "parameters": {}}]',
      },
      sharegpt,
    );
    expect(result.example).toEqual({
      kind: 'supervised',
      location: { dataset: 'test', file: 'test.json', row: 7, line: 40 },
      conversation: {
        system: 'Use tools.',
        tools: [{ type: 'function', function: { name: 'weather', description: 'd', parameters: {} } }],
        turns: [
          { role: 'user', content: 'Weather?' },
          {
            role: 'function_call',
            content: '{"name": "weather", "arguments": {"city": "Oslo"}}',
            toolCalls: [{ name: 'weather', arguments: { city: 'Oslo' } }],
          },
          { role: 'observation', content: '{"sky": "grey"}' },
          { role: 'assistant', content: 'Grey.' },
        ],
      },
    });
  });

  it('names a wrong role order', () => {
    expect(rejection({ conversations: [turn('gpt', 'hi'), turn('human', 'yo')] }, sharegpt)).toEqual({
      field: 'conversations[0].from',
      expected: 'human or observation (a user-side turn)',
      got: 'a string ("gpt")',
    });
    expect(rejection({ conversations: [turn('human', 'a'), turn('human', 'b')] }, sharegpt)).toEqual({
      field: 'conversations[1].from',
      expected: 'gpt or function_call (an assistant-side turn)',
      got: 'a string ("human")',
    });
    expect(
      rejection(
        { conversations: [turn('human', 'a'), turn('gpt', 'b'), turn('system', 'c'), turn('gpt', 'd')] },
        sharegpt,
      ),
    ).toEqual({
      field: 'conversations[2].from',
      expected: 'human or observation (a user-side turn); a system message may only come first',
      got: 'a string ("system")',
    });
    expect(rejection({ conversations: [turn('human', 'a'), turn('bot', 'b')] }, sharegpt)).toEqual({
      field: 'conversations[1].from',
      expected: 'gpt or function_call (an assistant-side turn)',
      got: 'a string ("bot")',
    });
  });

  it('names an odd or even turn count', () => {
    expect(
      rejection({ conversations: [turn('human', 'a'), turn('gpt', 'b'), turn('human', 'c')] }, sharegpt),
    ).toEqual({
      field: 'conversations',
      expected:
        'an even number of turns (user, assistant, user, assistant, ...) ending with an assistant turn',
      got: '3 turns',
    });
    const ranking = attributes({
      formatting: 'sharegpt',
      ranking: true,
      columns: { messages: 'conversations', chosen: 'chosen', rejected: 'rejected' },
    });
    expect(
      rejection(
        {
          conversations: [turn('human', 'a'), turn('gpt', 'b')],
          chosen: turn('gpt', 'c'),
          rejected: turn('gpt', 'd'),
        },
        ranking,
        'rm',
      ),
    ).toEqual({
      field: 'conversations',
      expected: 'an odd number of turns ending with a user turn (the answers go in chosen and rejected)',
      got: '2 turns',
    });
    expect(
      rejection(
        { conversations: [turn('human', 'a')], chosen: turn('gpt', 'c'), rejected: turn('human', 'd') },
        ranking,
        'rm',
      ),
    ).toEqual({
      field: 'rejected.from',
      expected: 'gpt or function_call (an assistant-side turn)',
      got: 'a string ("human")',
    });
  });

  it('names non-string and empty content, and bad tool JSON', () => {
    expect(rejection({ conversations: [turn('human', 'a'), turn('gpt', 12)] }, sharegpt)).toEqual({
      field: 'conversations[1].value',
      expected: 'a string',
      got: 'a number (12)',
    });
    expect(rejection({ conversations: [turn('human', ''), turn('gpt', 'b')] }, sharegpt)).toEqual({
      field: 'conversations[0].value',
      expected: 'a non-empty string',
      got: 'an empty string',
    });
    expect(
      rejection(
        { conversations: [turn('human', 'a'), turn('function_call', 'weather(city=Oslo)')] },
        sharegpt,
      ),
    ).toMatchObject({
      field: 'conversations[1].value',
      expected: 'a JSON function call {"name": ..., "arguments": {...}} or a list of them',
    });
    expect(
      rejection(
        { conversations: [turn('human', 'a'), turn('gpt', 'b')], tools: '[{"description": 1}]' },
        sharegpt,
      ),
    ).toEqual({
      field: 'tools[0].name',
      expected: 'a tool name',
      got: 'nothing (the field is missing)',
    });
    expect(rejection({ conversations: 'not a list' }, sharegpt)).toEqual({
      field: 'conversations',
      expected: 'a list of messages',
      got: 'a string ("not a list")',
    });
  });
});

describe('openai and v1 rows', () => {
  it('reads OpenAI tool_calls and tool messages', () => {
    const result = convert(
      {
        messages: [
          { role: 'system', content: 'sys' },
          { role: 'user', content: 'Weather?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }],
          },
          { role: 'tool', content: 'grey' },
          { role: 'assistant', content: 'Grey.' },
        ],
      },
      openai,
    );
    expect(result.example).toMatchObject({
      conversation: {
        system: 'sys',
        turns: [
          { role: 'user' },
          { role: 'function_call', toolCalls: [{ name: 'weather', arguments: { city: 'Oslo' } }] },
          { role: 'observation', content: 'grey' },
          { role: 'assistant', content: 'Grey.' },
        ],
      },
    });
  });

  it('reads typed content and loss weights, and rejects non-text parts', () => {
    const v1 = attributes({ formatting: 'v1' });
    const row = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', value: 'hi ' },
            { type: 'text', value: 'there' },
          ],
          loss_weight: 0,
        },
        { role: 'assistant', content: [{ type: 'text', value: 'hello' }], loss_weight: 0 },
        { role: 'user', content: [{ type: 'text', value: 'again' }], loss_weight: 0 },
        { role: 'assistant', content: [{ type: 'text', value: 'yes' }], loss_weight: 1 },
      ],
    };
    expect(convert(row, v1).example).toMatchObject({
      conversation: {
        turns: [
          { role: 'user', content: 'hi there' },
          { role: 'assistant', content: 'hello', lossWeight: 0 },
          { role: 'user', content: 'again' },
          { role: 'assistant', content: 'yes', lossWeight: 1 },
        ],
      },
    });
    const image = {
      messages: [{ role: 'user', content: [{ type: 'image', value: 'x.png' }] }, row.messages[1]],
    };
    expect(rejection(image, v1)).toEqual({
      field: 'messages[0].content[0].type',
      expected: '"text" (webtune trains text-only models)',
      got: 'a string ("image")',
    });
  });

  it('reads v1 preference rows and checks that only the last message differs', () => {
    const v1 = attributes({ formatting: 'v1', ranking: true });
    const message = (role: string, value: string) => ({ role, content: [{ type: 'text', value }] });
    const good = {
      chosen_messages: [message('user', 'q'), message('assistant', 'good')],
      rejected_messages: [message('user', 'q'), message('assistant', 'bad')],
    };
    expect(convert(good, v1, 'dpo').example).toMatchObject({
      kind: 'preference',
      conversation: { turns: [{ role: 'user', content: 'q' }] },
      chosen: { content: 'good' },
      rejected: { content: 'bad' },
    });
    const mismatched = {
      ...good,
      rejected_messages: [message('user', 'other'), message('assistant', 'bad')],
    };
    expect(rejection(mismatched, v1, 'dpo')).toMatchObject({
      field: 'rejected_messages[0]',
      expected: 'the same message as chosen_messages[0] (only the last may differ)',
    });
  });
});

describe('stage checks and format detection', () => {
  it('refuses a dataset that cannot serve the stage', () => {
    const ranking = attributes({ formatting: 'sharegpt', ranking: true });
    expect(() => checkStage(ranking, 'sft', 'x.json')).toThrow(
      /field "ranking": expected a dataset without preference pairs for stage sft/,
    );
    expect(() => checkStage(alpaca, 'dpo', 'x.json')).toThrow(
      /expected a preference dataset \(ranking: true\) for stage dpo/,
    );
    expect(() => checkStage(alpaca, 'kto', 'x.json')).toThrow(/expected a kto_tag column for stage kto/);
    expect(() => checkStage(sharegpt, 'pt', 'x.json')).toThrow(
      /expected alpaca \(a text column\) for stage pt/,
    );
  });

  it('guesses the format of a file loaded by path', () => {
    expect(detectDescription({ instruction: 'a', output: 'b', system: 's' }, 'json')).toEqual({
      formatting: 'alpaca',
      ranking: false,
      columns: { system: 'system' },
    });
    expect(detectDescription({ conversations: [{ from: 'human', value: 'x' }], tools: '' }, 'json')).toEqual({
      formatting: 'sharegpt',
      ranking: false,
      columns: { tools: 'tools', messages: 'conversations' },
    });
    expect(detectDescription({ messages: [{ role: 'user', content: 'x' }], label: true }, 'jsonl')).toEqual({
      formatting: 'openai',
      ranking: false,
      columns: { kto_tag: 'label', messages: 'messages' },
    });
    expect(
      detectDescription({ messages: [{ role: 'user', content: [{ type: 'text', value: 'x' }] }] }, 'jsonl'),
    ).toMatchObject({ formatting: 'v1' });
    expect(detectDescription({ chosen_messages: [], rejected_messages: [] }, 'jsonl')).toMatchObject({
      formatting: 'v1',
      ranking: true,
    });
    expect(detectDescription({ text: 'doc' }, 'jsonl')).toEqual({
      formatting: 'alpaca',
      columns: { prompt: 'text' },
    });
    expect(detectDescription(undefined, 'text')).toEqual({
      formatting: 'alpaca',
      columns: { prompt: 'text' },
    });
    expect(detectDescription({ foo: 1 }, 'json')).toBeUndefined();
  });
});
