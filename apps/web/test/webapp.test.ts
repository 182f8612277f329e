/*
 * The Model, Chat, Evaluate and Export conveniences in a real browser (Chromium, WebGPU on
 * SwiftShader), on one page as a first-time visitor would use them: a hub model in one click
 * (cached across a reload), the memory plan, multi-turn chat with a stop, an uploaded PEFT
 * adapter, export packages (GGUF with a LoRA file and a Modelfile, merged GGUF picked again as a
 * model, sharded safetensors, one zip) and predictions scored with BLEU/ROUGE.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generationMetrics } from '@webtune/eval';
import { readGguf } from '@webtune/gguf';
import type { HubServer } from '@webtune/hub/testing';
import { readSafetensorsBytes, toFloat32, writeSafetensors } from '@webtune/safetensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { unzipSync } from 'fflate';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoardPage, boardPage } from './board-page.js';
import { appRoot, browserAvailable, distFolder, launchChromium } from './chromium.js';
import { serveModelAsHub } from './hub-fixture.js';
import { type StaticServer, serveFolders } from './static-server.js';

const artifacts = join(appRoot, 'test-artifacts', 'webapp');
const ready = requireFixtures('models/stories260K-hf', 'eval/mmlu_subset') && browserAvailable();

/** A LoRA adapter for stories260K (r 2 on q_proj and v_proj), with values that change its answers. */
function storiesAdapter() {
  const rank = 2;
  let state = 7;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return (state / 2 ** 31 - 0.5) * 0.8;
  };
  const tensors: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[] = [];
  const vB: Float32Array[] = [];
  for (let layer = 0; layer < 5; layer++) {
    for (const [module, out] of [
      ['q_proj', 64],
      ['v_proj', 32],
    ] as const) {
      const prefix = `base_model.model.model.layers.${layer}.self_attn.${module}`;
      const a = Float32Array.from({ length: rank * 64 }, random);
      const b = Float32Array.from({ length: out * rank }, random);
      if (module === 'v_proj') vB.push(b);
      tensors.push({ name: `${prefix}.lora_A.weight`, dtype: 'F32', shape: [rank, 64], data: a });
      tensors.push({ name: `${prefix}.lora_B.weight`, dtype: 'F32', shape: [out, rank], data: b });
    }
  }
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: rank,
    lora_alpha: 4,
    lora_dropout: 0,
    bias: 'none',
    target_modules: ['q_proj', 'v_proj'],
    base_model_name_or_path: 'stories260K',
    fan_in_fan_out: false,
  };
  return { config: JSON.stringify(config), weights: writeSafetensors(tensors), vB };
}

const PREDICT_ROWS = [
  { instruction: 'Tell me about the cat.', input: '', output: 'The cat sat on the mat.' },
  { instruction: 'Tell me about the dog.', input: '', output: 'The dog ran in the park.' },
  { instruction: 'Say hello.', input: '', output: 'Hello, little bird.' },
];

describe.skipIf(!ready)('Model, Chat, Evaluate and Export in Chromium (SwiftShader)', () => {
  let site: StaticServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  let hub: HubServer;
  /** Requests the hub saw for one file of the model. */
  const hubRequests = (file: string) =>
    hub.requests.filter((request) => request.path === `/test/stories260K/resolve/${hub.commit}/${file}`)
      .length;

  let board: BoardPage;
  const panel = (id: string) => page.locator(`#panel-${id}`);
  const tab = (name: string) => board.tab(name);
  /** Waits for one TaskStatus to finish; fails with its message on an error. */
  const settle = (status: Locator, timeout = 120_000) => board.settle(status, timeout);
  const quickStartStatus = () => panel('model').locator('.quick-start .task-status');
  const loadFromHub = async () => {
    await tab('Model');
    await panel('model').getByLabel('Or a hub id').fill('test/stories260K');
    await panel('model').getByRole('button', { name: 'Download and load' }).click();
    return settle(quickStartStatus());
  };
  const download = async (click: () => Promise<void>, name: string) => {
    const [file] = await Promise.all([page.waitForEvent('download'), click()]);
    const path = join(artifacts, name);
    await file.saveAs(path);
    return { name: file.suggestedFilename(), bytes: new Uint8Array(await readFile(path)) };
  };
  const openPage = async () => {
    await page.goto(`${site.url}/?hub=${encodeURIComponent(hub.endpoint)}`);
    await board.waitForGpu();
  };

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    site = await serveFolders({ '/': distFolder });
    hub = await serveModelAsHub('test/stories260K', fixturePath('models/stories260K-hf'));
    browser = await launchChromium();
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    page = await context.newPage();
    board = boardPage(page);
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
    await openPage();
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await hub?.close();
  });

  it('loads a hub model in one click (resuming a cut download), from the cache after a reload, with its memory plan', async () => {
    // The weights' connection drops after 300,000 bytes: the download goes on with a Range request
    // from what was kept, into Cache Storage, in the same click (the chat below runs on these weights).
    const weights = `/test/stories260K/resolve/${hub.commit}/model.safetensors`;
    hub.cutNext.set(weights, 300_000);
    expect(await loadFromHub()).toMatch(/^Loaded test\/stories260K \(downloaded and cached\)/);
    const asked = hub.requests.filter((request) => request.path === weights);
    expect(asked).toHaveLength(2);
    expect(asked[0].headers.range).toBeUndefined();
    // From the bytes that reached the page (the rest of the 300,000 may be lost with the connection).
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(String(asked[1].headers.range))?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(300_000);
    const model = panel('model');
    expect(await model.locator('.model-details').textContent()).toContain('LlamaForCausalLM');

    // The plan: fits by default; its rows are the plan's; 4-bit shrinks the weights.
    const table = model.locator('table.memory-table');
    await expect.poll(() => table.getAttribute('data-fits')).toBe('true');
    const rows = await table.locator('th').allTextContents();
    for (const row of [
      'Weights (f32)',
      'Gradients',
      'Optimizer state (AdamW)',
      'KV cache (chat, at this length)',
    ])
      expect(rows).toContain(row);
    expect(rows).toContain('Activations with gradient checkpointing');
    expect(rows).toContain('Activations without checkpointing');
    await model.getByLabel('Base weights', { exact: true }).selectOption('4');
    await expect.poll(() => table.locator('th').first().textContent()).toBe('Weights (q4_0)');
    // A run far too large for a tab is refused with the plan's advice.
    await model.getByLabel('Batch size').fill('512');
    await model.getByLabel('Sequence length (cutoff_len)').fill('8192');
    await model.getByLabel('Sequence length (cutoff_len)').dispatchEvent('change');
    await expect.poll(() => table.getAttribute('data-fits')).toBe('false');
    expect(await model.locator('.plan-advice').textContent()).toMatch(/does not fit|the run needs about/);
    expect(await model.locator('.plan-advice li').allTextContents()).toContain('a shorter cutoff_len');
    if ((await page.locator('.gpu-status').textContent())?.includes('(software)')) {
      expect(await model.locator('.gpu-guidance').textContent()).toContain('software adapter');
    }

    // A reload reads the model back from Cache Storage: no weights are fetched again.
    await openPage();
    expect(await loadFromHub()).toMatch(/\(read from the browser cache\)/);
    expect(hubRequests('model.safetensors')).toBe(2);
    expect(hubRequests('config.json')).toBe(1);
    expect(hubRequests('tokenizer.json')).toBe(1);
  });

  it('chats over several turns with a system prompt, and stops an answer midway', async () => {
    await tab('Chat');
    const chat = panel('chat');
    const status = chat.locator('.chat-form .task-status');
    await chat.getByText('Sampling').click();
    await chat.getByLabel('Max new tokens').fill('6');
    await chat.getByLabel('Temperature').fill('0');
    await chat.getByLabel('System', { exact: true }).fill('You tell short stories.');
    await chat.getByLabel('Prompt').fill('Once upon a time');
    await chat.getByRole('button', { name: 'Send' }).click();
    await settle(status);
    const first = await chat.locator('.answer').allTextContents();
    await chat.getByLabel('Prompt').fill('And then?');
    await chat.getByRole('button', { name: 'Send' }).click();
    await settle(status);
    // Each column shows the earlier turn: the user's message and that model's own answer.
    const history = await chat.locator('.chat-column').first().locator('.chat-history li').allTextContents();
    expect(history).toEqual(['Once upon a time', first[0]]);
    expect(await chat.locator('.chat-column').nth(1).locator('.chat-history li').count()).toBe(2);

    await chat.getByRole('button', { name: 'New conversation' }).click();
    expect(await chat.locator('.chat-history li').count()).toBe(0);
    await chat.getByLabel('Max new tokens').fill('400');
    await chat.getByRole('button', { name: 'Send' }).click();
    await expect
      .poll(
        async () =>
          `${await status.getAttribute('data-state')}|${await status.textContent()}|${await chat.locator('.answer').first().textContent()}`,
        { timeout: 60_000, interval: 100 },
      )
      .toMatch(/^running\|[^|]*\|.+/s);
    await chat.getByRole('button', { name: 'Stop' }).click();
    expect(await settle(status)).toBe('Stopped.');
    // Stopped in the first answer: the second model was not asked.
    expect(await chat.locator('.answer').nth(1).textContent()).toBe('');
  });

  it('uses an uploaded PEFT adapter and exports GGUF with a LoRA file, a Modelfile and one zip', async () => {
    const adapter = storiesAdapter();
    await tab('Export');
    const exportPanel = panel('export');
    await exportPanel.getByLabel('Upload a PEFT adapter').setInputFiles([
      { name: 'adapter_config.json', mimeType: 'application/json', buffer: Buffer.from(adapter.config) },
      {
        name: 'adapter_model.safetensors',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from(adapter.weights),
      },
    ]);
    expect(await settle(exportPanel.locator('.adapter-picker .task-status'))).toBe(
      'Tuned model: uploaded adapter.',
    );

    const packageCard = exportPanel.locator('.export-package');
    await packageCard.getByLabel('Format').selectOption('gguf');
    await packageCard.getByLabel('GGUF type').selectOption('Q8_0');
    await packageCard.getByLabel('Keep the adapter as a GGUF LoRA file', { exact: false }).check();
    await packageCard.getByLabel('Name', { exact: true }).fill('stories');
    await packageCard.getByRole('button', { name: 'Prepare the package' }).click();
    await settle(packageCard.locator('.task-status'));
    expect(await packageCard.locator('pre.commands').textContent()).toContain(
      'ollama create stories -f ./Modelfile',
    );
    const zip = await download(
      () => packageCard.getByRole('button', { name: 'Download all as one zip' }).click(),
      'stories.zip',
    );
    expect(zip.name).toBe('stories.zip');
    const files = unzipSync(zip.bytes);
    expect(Object.keys(files).sort()).toEqual(['Modelfile', 'stories-lora.gguf', 'stories-q8_0.gguf']);
    const modelfile = new TextDecoder().decode(files.Modelfile);
    expect(modelfile).toContain('FROM ./stories-q8_0.gguf');
    expect(modelfile).toContain('ADAPTER ./stories-lora.gguf');
    expect(modelfile).toContain('PARAMETER stop "</s>"');
    const base = await readGguf(files['stories-q8_0.gguf']);
    expect(base.tensors.find((tensor) => tensor.name === 'blk.0.attn_q.weight')?.typeName).toBe('Q8_0');
    const lora = await readGguf(files['stories-lora.gguf']);
    expect(lora.metadata.get('general.type')?.value).toBe('adapter');
    // v_proj's lora_B reaches llama.cpp unchanged (only q/k rows are permuted).
    for (const layer of [0, 4]) {
      expect(await lora.readFloat32(`blk.${layer}.attn_v.weight.lora_b`)).toEqual(adapter.vB[layer]);
    }

    // The merged model as sharded float16 safetensors.
    await packageCard.getByLabel('Format').selectOption('merged');
    await packageCard.getByLabel('Safetensors dtype').selectOption('F16');
    await packageCard.getByLabel('Largest shard (MB)').fill('0.3');
    await packageCard.getByRole('button', { name: 'Prepare the package' }).click();
    await settle(packageCard.locator('.task-status'));
    const names = await packageCard.locator('ul.downloads a').allTextContents();
    expect(names).toContain('model.safetensors.index.json');
    expect(names.filter((name) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(name)).length).toBeGreaterThan(
      1,
    );

    // The merged GGUF, picked again as a model: its Q8_0 weights stay packed on the GPU.
    await packageCard.getByLabel('Format').selectOption('gguf');
    await packageCard.getByLabel('Keep the adapter as a GGUF LoRA file', { exact: false }).uncheck();
    await packageCard.getByRole('button', { name: 'Prepare the package' }).click();
    await settle(packageCard.locator('.task-status'));
    const merged = await download(
      () => packageCard.getByRole('link', { name: 'stories-q8_0.gguf' }).click(),
      'stories-q8_0.gguf',
    );
    const mergedFile = await readGguf(merged.bytes);
    expect(mergedFile.tensors.some((tensor) => tensor.name.includes('lora'))).toBe(false);
    await tab('Model');
    await panel('model').getByLabel('Or a GGUF file').setInputFiles(join(artifacts, 'stories-q8_0.gguf'));
    expect(await settle(panel('model').locator('.task-status').first())).toMatch(
      /^Loaded stories-q8_0\.gguf/,
    );
    expect(await panel('model').locator('.model-details').textContent()).toContain('LlamaForCausalLM');
    await panel('model').getByLabel('Base weights', { exact: true }).selectOption('f32');
    await expect
      .poll(() => panel('model').locator('table.memory-table th').first().textContent())
      .toBe('Weights (q8_0)');
  });

  it('predicts on a dataset and scores it with BLEU and ROUGE as webtune eval predict', async () => {
    await tab('Evaluate');
    const evaluate = panel('evaluate');
    await evaluate.getByLabel('Test dataset').setInputFiles({
      name: 'test.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(PREDICT_ROWS)),
    });
    await evaluate.getByLabel('Max new tokens').fill('8');
    await evaluate.locator('select[name="predict-models"]').selectOption('base');
    await evaluate.getByRole('button', { name: 'Predict and score' }).click();
    const card = evaluate.locator('.card', { has: page.getByRole('button', { name: 'Predict and score' }) });
    expect(await settle(card.locator('.task-status'))).toBe('Scored 3 samples.');
    const shown = await card
      .locator('table.predict-scores tbody tr[data-variant="base"] td')
      .allTextContents();
    const predictions = await download(
      () => card.getByRole('button', { name: 'Download the base predictions' }).click(),
      'generated_predictions_base.jsonl',
    );
    const records = new TextDecoder()
      .decode(predictions.bytes)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { prompt: string; predict: string; label: string });
    expect(records.map((record) => record.label)).toEqual(PREDICT_ROWS.map((row) => row.output));
    // The scores on the page are @webtune/eval's over the predictions it wrote.
    const metrics = generationMetrics(records);
    expect(shown).toEqual(
      (['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const).map((name) => metrics[name].toFixed(2)),
    );
  });

  it('trains two steps, then picks a checkpoint for the tuned model and downloads it as a zip', async () => {
    const [checked] = await board.checkData([{ name: 'train.json', contents: PREDICT_ROWS }], {
      cutoffLen: 64,
      valSize: 0,
    });
    expect(checked).toBe('done');
    // A run that cannot fit in a tab is refused before anything is written, with the plan's advice.
    const train = await board.setTrain({ runName: 'picker', maxSteps: 2, batchSize: 100000 });
    await train.getByRole('button', { name: 'Start' }).click();
    const refused = train.locator('.task-status').first();
    await expect.poll(() => refused.getAttribute('data-state'), { timeout: 60_000 }).toBe('error');
    expect(await refused.textContent()).toMatch(
      /this run does not fit in this tab: .* Try: .*gradient_accumulation_steps/,
    );
    await board.setTrain({ batchSize: 1, learningRate: 0.01, saveSteps: 1, evalSteps: 0 });
    await train.getByRole('button', { name: 'Start' }).click();
    // The status still shows the refusal until this run starts: wait for that before settling.
    await expect.poll(() => refused.textContent()).not.toMatch(/does not fit/);
    expect(await settle(train.locator('.task-status').first(), 300_000)).toBe(
      'Training completed after 2 steps.',
    );

    await tab('Chat');
    const picker = panel('chat').locator('.adapter-picker');
    await expect
      .poll(() => picker.locator('option').allTextContents())
      .toEqual(expect.arrayContaining(['picker / checkpoint-1', 'picker / checkpoint-2']));
    await picker.getByLabel('Tuned model').selectOption({ label: 'picker / checkpoint-1' });
    expect(await settle(picker.locator('.task-status'))).toBe('Tuned model: picker/checkpoint-1.');
    const zip = await download(
      () => picker.getByRole('button', { name: 'Download this checkpoint (zip)' }).click(),
      'picker-checkpoint-1.zip',
    );
    expect(zip.name).toBe('picker-checkpoint-1.zip');
    const saved = unzipSync(zip.bytes);
    expect(Object.keys(saved)).toContain('checkpoint-1/adapter_model.safetensors');
    expect(Object.keys(saved)).toContain('checkpoint-1/adapter_config.json');

    // The tuned model is now that checkpoint: its exported adapter holds the checkpoint's tensors.
    await tab('Export');
    const packageCard = panel('export').locator('.export-package');
    await packageCard.getByLabel('Format').selectOption('adapter');
    await packageCard.getByRole('button', { name: 'Prepare the package' }).click();
    await settle(packageCard.locator('.task-status'));
    const exported = await download(
      () => packageCard.getByRole('link', { name: 'adapter_model.safetensors' }).click(),
      'picked-adapter.safetensors',
    );
    const tensorsOf = (bytes: Uint8Array) =>
      Object.fromEntries(
        readSafetensorsBytes(bytes).tensors.map((tensor) => [tensor.name, [...toFloat32(tensor)]]),
      );
    const fromCheckpoint = tensorsOf(saved['checkpoint-1/adapter_model.safetensors']);
    expect(Object.keys(fromCheckpoint).length).toBeGreaterThan(0);
    expect(tensorsOf(exported.bytes)).toEqual(fromCheckpoint);
  });

  it('builds the forgetting report of the picked checkpoint against the base', async () => {
    await tab('Evaluate');
    const evaluate = panel('evaluate');
    const card = evaluate.locator('.card', { has: page.getByRole('button', { name: 'Build the report' }) });
    await card.getByLabel('General benchmark folder').setInputFiles(fixturePath('eval/mmlu_subset'));
    await card.getByLabel('Domain texts').fill('The cat sat on the mat.\n\nThe dog ran in the park.');
    await card.getByLabel('Question limit per subject').fill('1');
    await card.getByRole('button', { name: 'Build the report' }).click();
    const summary = await settle(card.locator('.task-status'), 180_000);
    const report = card.locator('pre.forgetting-report');
    expect(await report.getAttribute('data-verdict')).toMatch(
      /^(improved|improved-with-forgetting|forgot|worse|no-change)$/,
    );
    const text = (await report.textContent()) ?? '';
    expect(text).toContain('your domain texts');
    expect(text).toContain(summary);
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});
