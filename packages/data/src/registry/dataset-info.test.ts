import { readFileSync } from 'node:fs';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { DataError } from '../issues.js';
import { localDatasetNames, parseDatasetInfo, resolveDatasetAttributes } from './dataset-info.js';

describe('dataset_info.json', () => {
  it('completes entries with LLaMA-Factory defaults', () => {
    const info = parseDatasetInfo(
      JSON.stringify({
        plain: { file_name: 'plain.json' },
        chat: { file_name: 'chat.jsonl', formatting: 'sharegpt', tags: { role_tag: 'role' }, num_samples: 5 },
        openai: { file_name: 'o.jsonl', formatting: 'openai' },
      }),
    );
    expect(resolveDatasetAttributes(info, 'plain')).toEqual({
      name: 'plain',
      origin: 'file',
      location: 'plain.json',
      formatting: 'alpaca',
      ranking: false,
      subset: undefined,
      split: 'train',
      folder: undefined,
      numSamples: undefined,
      columns: { prompt: 'instruction', query: 'input', response: 'output', messages: 'conversations' },
      tags: {
        role_tag: 'from',
        content_tag: 'value',
        user_tag: 'human',
        assistant_tag: 'gpt',
        observation_tag: 'observation',
        function_tag: 'function_call',
        system_tag: 'system',
      },
    });
    const chat = resolveDatasetAttributes(info, 'chat');
    expect(chat.tags.role_tag).toBe('role');
    expect(chat.tags.content_tag).toBe('value');
    expect(chat.numSamples).toBe(5);
    expect(resolveDatasetAttributes(info, 'openai')).toMatchObject({
      columns: { messages: 'messages' },
      tags: {
        role_tag: 'role',
        content_tag: 'content',
        user_tag: 'user',
        assistant_tag: 'assistant',
        observation_tag: 'tool',
      },
    });
  });

  it('names the bad field of an entry', () => {
    const info = parseDatasetInfo({
      a: { file_name: 'a.json', formatting: 'markdown' },
      b: { file_name: 'b.json', num_samples: -3 },
      c: { formatting: 'alpaca' },
      d: { file_name: 'd.json', columns: { answer: 'x' } },
    });
    const message = (name: string) => {
      try {
        resolveDatasetAttributes(info, name);
      } catch (error) {
        expect(error).toBeInstanceOf(DataError);
        return (error as DataError).issue;
      }
      throw new Error('expected a DataError');
    };
    expect(message('a')).toMatchObject({
      dataset: 'a',
      field: 'a.formatting',
      expected: 'one of alpaca, sharegpt, openai, v1',
      got: 'a string ("markdown")',
    });
    expect(message('b')).toMatchObject({
      field: 'b.num_samples',
      expected: 'a positive integer',
      got: 'a number (-3)',
    });
    expect(message('c')).toMatchObject({
      field: 'c.file_name',
      expected: 'file_name (or hf_hub_url, ms_hub_url, script_url, cloud_file_name)',
    });
    expect(message('d')).toMatchObject({ field: 'd.columns.answer' });
    expect(message('missing')).toMatchObject({
      field: 'missing',
      expected: 'a dataset named in dataset_info.json',
    });
    expect(() => parseDatasetInfo('[1, 2]')).toThrow(
      /expected an object mapping dataset names to descriptions, got an array of 2/,
    );
    expect(() => parseDatasetInfo('{"a": ')).toThrow(/expected valid JSON/);
  });

  describe.skipIf(!requireFixtures('datasets/llamafactory/dataset_info.json'))(
    'the LLaMA-Factory fixture',
    () => {
      it('resolves every entry, and lists the ones with local files', () => {
        const info = parseDatasetInfo(
          readFileSync(fixturePath('datasets/llamafactory/dataset_info.json'), 'utf8'),
        );
        for (const name of info.entries.keys())
          expect(() => resolveDatasetAttributes(info, name)).not.toThrow();
        expect(localDatasetNames(info)).toContain('glaive_toolcall_zh_demo');
        expect(resolveDatasetAttributes(info, 'alpaca_en').origin).toBe('hf_hub');
        expect(resolveDatasetAttributes(info, 'kto_en_demo')).toMatchObject({
          formatting: 'sharegpt',
          columns: { messages: 'messages', kto_tag: 'label' },
          tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
        });
      });
    },
  );
});
