/*
 * The board in a real browser: Debian's Chromium through playwright-core, WebGPU on SwiftShader
 * (no GPU needed), the built app and the stories260K fixture served from 127.0.0.1. The steps run
 * in order on one page, as a user would: load, check data, train, chat, vote, export, evaluate,
 * remote. Screenshots of every tab go to apps/web/test-artifacts/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSafetensorsBytes } from '@webtune/safetensors';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { TrainerEvent } from '@webtune/train';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoardPage, boardPage } from './board-page.js';
import { appRoot, browserAvailable, distFolder, launchChromium } from './chromium.js';
import { type ProtocolServer, startProtocolServer } from './protocol-server.js';
import { type StaticServer, serveFolders } from './static-server.js';

const artifacts = join(appRoot, 'test-artifacts');

const ready = requireFixtures('models/stories260K-hf', 'eval/mmlu_subset') && browserAvailable();

// Eight good rows in one pattern (the tuned model should pick it up) and one bad row (no output).
const GOOD_ROW = {
  instruction: 'Tell me about the cat.',
  input: '',
  output: 'The cat sat on the mat. The cat was happy.',
};
const DATASET = [
  GOOD_ROW,
  { instruction: 'Tell me about the dog.', input: '', output: 'The dog sat on the mat. The dog was happy.' },
  {
    instruction: 'Tell me about the bird.',
    input: '',
    output: 'The bird sat on the mat. The bird was happy.',
  },
  { instruction: 'Say hello.', input: '' },
  { instruction: 'Tell me about the fox.', input: '', output: 'The fox sat on the mat. The fox was happy.' },
  {
    instruction: 'Tell me about the frog.',
    input: '',
    output: 'The frog sat on the mat. The frog was happy.',
  },
  {
    instruction: 'Tell me about the fish.',
    input: '',
    output: 'The fish sat on the mat. The fish was happy.',
  },
  {
    instruction: 'Tell me about the bear.',
    input: '',
    output: 'The bear sat on the mat. The bear was happy.',
  },
  {
    instruction: 'Tell me about the duck.',
    input: '',
    output: 'The duck sat on the mat. The duck was happy.',
  },
];
const TRAIN_STEPS = 20;

describe.skipIf(!ready)('the board in Chromium with WebGPU on SwiftShader', () => {
  let site: StaticServer;
  let remoteServer: ProtocolServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];

  let board: BoardPage;
  const tab = (name: string) => board.tab(name);
  const panel = (id: string) => page.locator(`#panel-${id}`);
  const settle = (scope: Locator, timeout: number) => board.settle(scope, timeout);
  const screenshot = async (name: string) => {
    // From the top: a full-page capture of a scrolled page draws the sticky tab bar mid-page.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  };
  const loadStories = () => board.loadModelFromUrl(`${site.url}/fixtures/stories260K-hf/`);
  const checkDataset = async () => {
    const [state, text] = await board.checkData([{ name: 'animals.json', contents: DATASET }], {
      cutoffLen: 64,
      valSize: 2,
    });
    if (state === 'error') throw new Error(`the board reported: ${text}`);
    return text;
  };

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    site = await serveFolders({
      '/': distFolder,
      '/fixtures/stories260K-hf/': fixturePath('models/stories260K-hf'),
    });
    const scripted: TrainerEvent[] = [1, 2, 3].map((step) => ({
      type: 'step-end',
      step,
      totalSteps: 3,
      epoch: step / 3,
      loss: 3 - step * 0.5,
      learningRate: 1e-4,
      gradNorm: 1,
      tokens: 100,
      tokensPerSecond: 1000,
      stepMs: 100,
      elapsedMs: step * 100,
      remainingMs: (3 - step) * 100,
      memory: { liveBytes: 1 << 20, peakBytes: 2 << 20 },
      metrics: {},
    }));
    remoteServer = await startProtocolServer([
      {
        type: 'train-start',
        totalSteps: 3,
        stepsPerEpoch: 3,
        trainRows: 6,
        validationRows: 0,
        trainableParameters: 1000,
        resumedFrom: null,
        firstStep: 1,
      },
      ...scripted,
      {
        type: 'train-end',
        reason: 'completed',
        step: 3,
        totalSteps: 3,
        loss: 1.5,
        elapsedMs: 300,
        memory: { liveBytes: 1 << 20, peakBytes: 2 << 20 },
        lastCheckpoint: null,
      },
    ]);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    board = boardPage(page);
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
    await page.goto(`${site.url}/`);
    await board.waitForGpu();
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await remoteServer?.close();
  });

  it('moves between tabs with the keyboard', async () => {
    await page.getByRole('tab', { name: 'Model' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Data' }).getAttribute('aria-selected')).toBe('true');
    await page.keyboard.press('End');
    expect(await page.getByRole('tab', { name: 'Remote' }).getAttribute('aria-selected')).toBe('true');
    await page.keyboard.press('Home');
    expect(await page.getByRole('tab', { name: 'Model' }).getAttribute('aria-selected')).toBe('true');
  });

  it('loads stories260K from a URL and shows its shape and memory needs', async () => {
    const message = await loadStories();
    expect(message).toMatch(/^Loaded .*stories260K-hf/);
    const facts = await panel('model').locator('.model-details').textContent();
    expect(facts).toContain('LlamaForCausalLM');
    expect(facts).toMatch(/Layers\s*5/);
    await expect.poll(() => panel('model').locator('.memory-table').count()).toBe(1);
    expect(await panel('model').locator('.memory-table').textContent()).toMatch(/Optimizer state/);
    await screenshot('model');
  });

  it('validates a dataset with a bad row and reports the row', async () => {
    const message = await checkDataset();
    expect(message).toBe('6 training rows, 2 validation rows, 1 rejected.');
    const rejected = panel('data').locator('table.rejected-rows tbody tr');
    expect(await rejected.count()).toBe(1);
    expect(await rejected.first().getAttribute('data-row')).toBe('4');
    expect(await rejected.first().textContent()).toContain('output');
    expect(await panel('data').locator('svg.histogram rect').count()).toBeGreaterThan(0);
    expect(await panel('data').locator('.preview mark').count()).toBeGreaterThan(0);
    await screenshot('data');
  });

  it(`runs ${TRAIN_STEPS} LoRA SFT steps in the page, pausing and resuming from an OPFS checkpoint`, async () => {
    const train = await board.setTrain({
      method: 'lora',
      maxSteps: TRAIN_STEPS,
      batchSize: 2,
      gradientAccumulation: 1,
      learningRate: 0.01,
      schedule: 'constant',
      saveSteps: 5,
      evalSteps: 10,
      checkpointing: false,
    });
    await train.getByRole('button', { name: 'Start' }).click();

    // Pause once a few steps are done: the run stops at a step boundary and saves a checkpoint.
    const lossPoints = async () =>
      Number((await train.locator('canvas.chart-canvas').getAttribute('data-loss-points')) ?? 0);
    await expect.poll(lossPoints, { timeout: 300_000, interval: 500 }).toBeGreaterThanOrEqual(3);
    await train.getByRole('button', { name: 'Pause' }).click();
    const paused = await settle(train, 300_000);
    expect(paused).toMatch(/^Paused at step \d+/);
    const pausedAt = Number(/step (\d+)/.exec(paused)![1]);
    expect(await train.locator('.log').textContent()).toContain(`checkpoint checkpoint-${pausedAt} saved`);

    await train.getByRole('button', { name: 'Resume' }).click();
    await expect
      .poll(async () => (await train.locator('.log').textContent()) ?? '', { timeout: 120_000 })
      .toContain(`Resumed from checkpoint-${pausedAt}`);
    const done = await settle(train, 600_000);
    expect(done).toBe(`Training completed after ${TRAIN_STEPS} steps.`);

    // The chart drew every step once, and the eval points.
    expect(await lossPoints()).toBe(TRAIN_STEPS);
    expect(Number(await train.locator('canvas.chart-canvas').getAttribute('data-eval-points'))).toBe(2);
    const losses = (await train
      .locator('.chart-table tbody tr')
      .evaluateAll((rows) =>
        rows.map((row) => Number(row.children[1].textContent)).filter((value) => value > 0),
      )) as number[];
    expect(losses).toHaveLength(TRAIN_STEPS);
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    expect(mean(losses.slice(-3))).toBeLessThan(0.8 * mean(losses.slice(0, 3)));
    // The canvas has pixels in the loss colour, not only the background.
    const inked = await train.locator('canvas.chart-canvas').evaluate((canvas: HTMLCanvasElement) => {
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let count = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
      return count;
    });
    expect(inked).toBeGreaterThan(500);
    expect(await train.locator('[data-metric="Tokens/s"]').textContent()).toMatch(/^\d/);
    await screenshot('train');
  });

  it('chats with both models side by side, then records a blind A/B vote as a preference pair', async () => {
    await tab('Chat');
    const chat = panel('chat');
    await chat.getByText('Sampling').click();
    await chat.getByLabel('Max new tokens').fill('12');
    await chat.getByLabel('Temperature').fill('0');
    await chat.getByLabel('Prompt').fill('Tell me about the cat.');
    await chat.getByRole('button', { name: 'Send' }).click();
    await settle(chat, 120_000);
    const answers = await chat.locator('.answer').allTextContents();
    expect(answers).toHaveLength(2);
    expect(answers[0].length).toBeGreaterThan(0);
    expect(answers[1].length).toBeGreaterThan(0);
    expect(answers[1]).not.toBe(answers[0]);

    await chat.getByLabel('Blind A/B', { exact: false }).check();
    await chat.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => chat.locator('.vote-bar').isVisible(), { timeout: 120_000 }).toBe(true);
    await chat.getByRole('button', { name: 'Answer 1 is better' }).click();
    expect(await chat.locator('.vote-bar + .note').textContent()).toMatch(
      /^Recorded: you preferred the (base|tuned) model's answer\.$/,
    );
    expect(await chat.locator('.pairs-count').textContent()).toBe('1 preference pair recorded.');
    const pair = await chat.locator('table.pairs tbody tr').first().locator('td').allTextContents();
    expect(pair[0]).toBe('Tell me about the cat.');
    expect(new Set([pair[1], pair[2]])).toEqual(new Set(answers));
    expect(
      await page.evaluate(() => JSON.parse(localStorage.getItem('webtune.preference-pairs') ?? '[]').length),
    ).toBe(1);
    await screenshot('chat');
  });

  it('feeds the recorded pair to a DPO run', async () => {
    await panel('chat').getByRole('button', { name: 'Use for a DPO run' }).click();
    expect(await page.getByRole('tab', { name: 'Data' }).getAttribute('aria-selected')).toBe('true');
    expect(await panel('data').getByLabel('Stage').inputValue()).toBe('dpo');
    await panel('data').getByLabel('val_size').fill('0');
    await panel('data').getByRole('button', { name: 'Check data' }).click();
    expect(await settle(panel('data'), 60_000)).toBe('1 training rows, 0 validation rows, 0 rejected.');
    await tab('Train');
    const train = panel('train');
    expect(await train.getByLabel('Stage').inputValue()).toBe('dpo');
    await train.getByLabel('Run name').fill('dpo-1');
    await train.getByLabel('Max steps').fill('2');
    await train.getByLabel('Learning rate', { exact: true }).fill('0.001');
    await train.getByLabel('Batch size').fill('1');
    await train.getByLabel('Eval steps').fill('0');
    await train.getByRole('button', { name: 'Start' }).click();
    expect(await settle(train, 300_000)).toBe('Training completed after 2 steps.');
    const losses = await train
      .locator('.chart-table tbody tr')
      .evaluateAll((rows) => rows.map((row) => Number(row.children[1].textContent)));
    expect(losses).toHaveLength(2);
    // DPO starts at log(2): the policy equals its reference before the first update.
    expect(losses[0]).toBeCloseTo(Math.log(2), 3);
    await train.getByLabel('Run name').fill('run-1');
    await screenshot('train-dpo');
  });

  it('exports the adapter as PEFT files that parse back in Node', async () => {
    await tab('Export');
    const exportPanel = panel('export');
    await exportPanel.getByRole('button', { name: 'Prepare the adapter files' }).click();
    await settle(exportPanel, 60_000);
    const files: Record<string, Buffer> = {};
    for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        exportPanel.getByRole('link', { name }).click(),
      ]);
      expect(download.suggestedFilename()).toBe(name);
      const path = join(artifacts, name);
      await download.saveAs(path);
      files[name] = await readFile(path);
    }
    const config = JSON.parse(files['adapter_config.json'].toString('utf8'));
    expect(config.peft_type).toBe('LORA');
    expect(config.r).toBe(8);
    const { tensors } = readSafetensorsBytes(new Uint8Array(files['adapter_model.safetensors']));
    const names = tensors.map((tensor) => tensor.name);
    expect(names.some((name) => /^base_model\.model\.model\.layers\.0\..*lora_A\.weight$/.test(name))).toBe(
      true,
    );
    expect(names.filter((name) => name.endsWith('lora_B.weight'))).toHaveLength(names.length / 2);
    // Training moved lora_B away from its zero start.
    const loraB = tensors.find((tensor) => tensor.name.endsWith('lora_B.weight'))!;
    const values = new Float32Array(
      loraB.data.buffer.slice(loraB.data.byteOffset, loraB.data.byteOffset + loraB.data.byteLength),
    );
    expect(values.some((value) => value !== 0)).toBe(true);

    // The merged model: a Hugging Face folder whose weights parse, without adapter tensors.
    await exportPanel.getByRole('button', { name: 'Prepare the merged model' }).click();
    await expect
      .poll(() => exportPanel.locator('.task-status').nth(1).getAttribute('data-state'), { timeout: 60_000 })
      .toBe('done');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      exportPanel.getByRole('link', { name: 'model.safetensors', exact: true }).click(),
    ]);
    const mergedPath = join(artifacts, 'merged-model.safetensors');
    await download.saveAs(mergedPath);
    const merged = readSafetensorsBytes(new Uint8Array(await readFile(mergedPath)));
    const mergedNames = merged.tensors.map((tensor) => tensor.name);
    expect(mergedNames).toContain('model.layers.0.self_attn.q_proj.weight');
    expect(mergedNames.some((name) => name.includes('lora_'))).toBe(false);
    for (const name of ['config.json', 'tokenizer.json']) {
      expect(await exportPanel.getByRole('link', { name, exact: true }).count()).toBe(1);
    }
    await screenshot('export');
  });

  it('computes perplexity with the base and the tuned model', async () => {
    await tab('Evaluate');
    const evaluate = panel('evaluate');
    await evaluate.getByLabel('Text', { exact: true }).fill('The cat sat on the mat. The cat was happy.');
    await evaluate.getByRole('button', { name: 'Compute perplexity' }).click();
    await settle(evaluate, 60_000);
    const rows = await evaluate.locator('table.results tbody tr').allTextContents();
    expect(rows).toHaveLength(2);
  });

  it('scores a multiple-choice task folder', async () => {
    const evaluate = panel('evaluate');
    await evaluate.getByLabel('Task folder').setInputFiles(fixturePath('eval/mmlu_subset'));
    await evaluate.getByLabel('Examples in each prompt (n-shot)').fill('1');
    await evaluate.getByLabel('Questions per subject').fill('2');
    await evaluate.getByRole('button', { name: 'Run the benchmark' }).click();
    await expect
      .poll(() => evaluate.locator('.task-status').nth(1).getAttribute('data-state'), { timeout: 120_000 })
      .toMatch(/^(done|error)$/);
    expect(await evaluate.locator('.task-status').nth(1).textContent()).toBe('Done.');
    const captions = await evaluate.locator('table.results caption').allTextContents();
    expect(captions).toEqual([
      expect.stringMatching(/^base model: \d+\.\d% of 10 questions$/),
      expect.stringMatching(/^tuned model: \d+\.\d% of 10 questions$/),
    ]);
    await screenshot('evaluate');
  });

  it('offers the completed run’s result again after the tab is reloaded', async () => {
    // Without saved Train settings the defaults come back (board-lifecycle.test.ts checks the saved ones).
    await page.evaluate(() => localStorage.removeItem('webtune.train-settings'));
    await page.reload();
    await board.waitForGpu();
    await loadStories();
    await checkDataset();
    await tab('Train');
    await expect
      .poll(() => panel('train').locator('.note').allTextContents(), { timeout: 10_000 })
      .toContainEqual(
        expect.stringMatching(/^Run “run-1” completed 20 of 20 steps in this browser: use its result/),
      );
    // A completed run has nothing to resume: its result is offered instead.
    expect(await panel('train').getByRole('button', { name: 'Resume' }).isDisabled()).toBe(true);
    expect(await panel('train').getByRole('button', { name: 'Use the trained result' }).isVisible()).toBe(
      true,
    );
  });

  it('drives a run on a server that speaks the webui protocol, with the log streamed', async () => {
    await tab('Remote');
    const remotePanel = panel('remote');
    await remotePanel.getByLabel('Server', { exact: true }).fill(remoteServer.url);
    await remotePanel.getByRole('button', { name: 'Connect' }).click();
    expect(await settle(remotePanel, 10_000)).toMatch(/^Connected to webtune 0\.0\.0-test/);
    await remotePanel.getByLabel('Model on the server', { exact: true }).fill('models/stories260K-hf');
    await remotePanel.getByLabel('Datasets', { exact: true }).fill('data/animals.json');
    await remotePanel.getByLabel('Train on this server', { exact: false }).check();
    await screenshot('remote');
    await tab('Train');
    await panel('train').getByLabel('Max steps').fill('3');
    await panel('train').getByLabel('Learning rate', { exact: true }).fill('0.0002');
    await panel('train').getByRole('button', { name: 'Start' }).click();
    const message = await settle(panel('train'), 30_000);
    expect(message).toBe('Training completed after 3 steps.');
    expect(await panel('train').locator('canvas.chart-canvas').getAttribute('data-loss-points')).toBe('3');
    expect(await panel('train').locator('.log').textContent()).toContain('loading models/stories260K-hf');
    expect(remoteServer.configs[0]).toMatchObject({
      model_name_or_path: 'models/stories260K-hf',
      dataset: 'data/animals.json',
      stage: 'sft',
      finetuning_type: 'lora',
      max_steps: 3,
      learning_rate: 0.0002,
      lora_rank: 8,
      // The board's defaults are the key table's (Transformers' linear schedule); keys left empty
      // are not sent, so the server's planner applies LLaMA-Factory's lora_alpha = 2 x lora_rank.
      lr_scheduler_type: 'linear',
    });
    expect(remoteServer.configs[0]).not.toHaveProperty('lora_alpha');
    await tab('Remote');
    await remotePanel.getByLabel('Train on this server', { exact: false }).uncheck();
  });

  it('stays readable at a narrow width', async () => {
    await page.setViewportSize({ width: 380, height: 800 });
    for (const [name, id] of [
      ['Train', 'train'],
      ['Chat', 'chat'],
      ['Data', 'data'],
    ] as const) {
      await tab(name);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} is wider than the screen`).toBeLessThanOrEqual(0);
      await screenshot(`narrow-${id}`);
    }
    await page.setViewportSize({ width: 1200, height: 900 });
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });

  it('says clearly when the browser has no WebGPU', async () => {
    const plain = await context.newPage();
    await plain.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    await plain.goto(`${site.url}/`);
    const banner = plain.getByRole('alert');
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toContain('no WebGPU');
    writeFileSync(join(artifacts, 'no-webgpu.png'), await plain.screenshot());
    await plain.close();
  });
});
