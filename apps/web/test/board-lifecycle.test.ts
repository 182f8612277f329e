/*
 * The board's round-2 defects (issue 18), each checked in Chromium with WebGPU on SwiftShader: a
 * run's lifecycle across reloads, data that is either checked or not active, messages, banners,
 * the chart, Remote pause/resume and the run as a LLaMA-Factory YAML, dataset_info.json folders.
 * One browser, one page, the steps in order as a user would take them (each `it` names the
 * defect numbers it covers).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { TrainerEvent } from '@webtune/train';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type BoardPage, boardPage } from './board-page.js';
import { browserAvailable, distFolder, launchChromium } from './chromium.js';
import { type ProtocolServer, startProtocolServer } from './protocol-server.js';
import { type StaticServer, serveFolders } from './static-server.js';

const ready = requireFixtures('models/stories260K-hf') && browserAvailable();

const ANIMALS = ['cat', 'dog', 'bird', 'fox', 'frog', 'fish'].map((animal) => ({
  instruction: `Tell me about the ${animal}.`,
  input: '',
  output: `The ${animal} sat on the mat.`,
}));

/** A scripted remote run of `steps` steps (30 ms apart on the stand-in server). */
function script(steps: number): TrainerEvent[] {
  const memory = { liveBytes: 1 << 20, peakBytes: 2 << 20 };
  return [
    {
      type: 'train-start',
      totalSteps: steps,
      stepsPerEpoch: steps,
      trainRows: 6,
      validationRows: 0,
      trainableParameters: 1000,
      resumedFrom: null,
      firstStep: 1,
    },
    ...Array.from(
      { length: steps },
      (_, i): TrainerEvent => ({
        type: 'step-end',
        step: i + 1,
        totalSteps: steps,
        epoch: (i + 1) / steps,
        loss: 3 - i * 0.05,
        learningRate: 2e-4 * (1 - i / steps),
        gradNorm: 1,
        tokens: 100,
        tokensPerSecond: 1000,
        stepMs: 30,
        elapsedMs: (i + 1) * 30,
        remainingMs: (steps - i - 1) * 30,
        memory,
        metrics: {},
      }),
    ),
    {
      type: 'train-end',
      reason: 'completed',
      step: steps,
      totalSteps: steps,
      loss: 1.5,
      elapsedMs: steps * 30,
      memory,
      lastCheckpoint: null,
    },
  ];
}

describe.skipIf(!ready)('the board across reloads, failures and servers (issue 18 defects)', () => {
  let site: StaticServer;
  let server: ProtocolServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let scratch: string;
  const consoleErrors: string[] = [];

  let board: BoardPage;
  const tab = (name: string) => board.tab(name);
  const panel = (id: string) => page.locator(`#panel-${id}`);
  const statusOf = (id: string) => panel(id).locator('.task-status').first();
  /** Waits for a panel's first TaskStatus to end; returns [state, text]. */
  const settled = (id: string, timeout: number) => board.settled(panel(id), timeout);
  const settle = (id: string, timeout: number) => board.settle(panel(id), timeout);
  /** The model's files picked loose, without tokenizer_config.json (so no EOS token). */
  const loadLooseModel = async () => {
    await tab('Model');
    const folder = join(scratch, 'model');
    // The same files again fire no change: empty the input first; then forget the last outcome, so
    // the wait below is for this load.
    await panel('model').getByLabel('Or its files').setInputFiles([]);
    await statusOf('model').evaluate((element) => element.removeAttribute('data-state'));
    await panel('model')
      .getByLabel('Or its files')
      .setInputFiles(
        ['config.json', 'tokenizer.json', 'model.safetensors'].map((name) => join(folder, name)),
      );
    return settle('model', 120_000);
  };
  const checkFile = (name: string, contents: string) => board.checkData([{ name, contents }]);
  const lossPoints = async () =>
    Number((await panel('train').locator('canvas.chart-canvas').getAttribute('data-loss-points')) ?? 0);
  const leavePrompted = () =>
    page.evaluate(() => {
      const event = new Event('beforeunload', { cancelable: true });
      window.dispatchEvent(event);
      return event.defaultPrevented;
    });

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'webtune-board-'));
    mkdirSync(join(scratch, 'model'));
    for (const name of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      copyFileSync(join(fixturePath('models/stories260K-hf'), name), join(scratch, 'model', name));
    }
    const data = join(scratch, 'llama-data');
    mkdirSync(data);
    writeFileSync(
      join(data, 'dataset_info.json'),
      JSON.stringify({
        animals: { file_name: 'animals.json', columns: { prompt: 'question', response: 'answer' } },
        hub_demo: { hf_hub_url: 'someone/demo' },
        broken: { file_name: 'missing.json' },
      }),
    );
    writeFileSync(
      join(data, 'animals.json'),
      JSON.stringify(ANIMALS.map((row) => ({ question: row.instruction, answer: row.output }))),
    );
    site = await serveFolders({ '/': distFolder });
    server = await startProtocolServer(script(30));
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.url });
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
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('9: a software adapter gets a "slow" hint that points to the Remote tab', async () => {
    const notice = page.locator('.banner-info');
    await expect.poll(() => notice.isVisible()).toBe(true);
    expect(await notice.textContent()).toMatch(/software renderer .*training will be slow/);
    await notice.getByRole('button', { name: /Remote tab/ }).click();
    expect(await page.getByRole('tab', { name: 'Remote' }).getAttribute('aria-selected')).toBe('true');
  });

  it('6: loose model files warn about the missing EOS token and a cutoff_len over the model positions', async () => {
    expect(await loadLooseModel()).toMatch(/^Loaded /);
    await tab('Data');
    const warnings = panel('data').locator('.data-warnings li');
    // The default cutoff_len (2048) is longer than stories260K's 512 positions.
    expect(await warnings.allTextContents()).toEqual([
      expect.stringContaining('No tokenizer_config.json'),
      "cutoff_len 2048 is longer than the model's 512 positions (max_position_embeddings): set it to 512 or less.",
    ]);
    await panel('data').getByLabel('cutoff_len', { exact: true }).fill('4096');
    expect(await warnings.nth(1).textContent()).toContain('cutoff_len 4096');
    await panel('data').getByLabel('cutoff_len', { exact: true }).fill('64');
    expect(await warnings.count()).toBe(1);
  });

  it('dataset_info.json: a picked folder lists its datasets, columns and raw rows, and trains by name', async () => {
    await tab('Data');
    await panel('data').getByLabel('Dataset folder').setInputFiles(join(scratch, 'llama-data'));
    const rows = panel('data').locator('table.dataset-info-table tbody tr');
    await expect.poll(() => rows.count()).toBe(3);
    const animals = panel('data').locator('tr[data-dataset="animals"]');
    expect(await animals.textContent()).toContain('prompt: question, query: input, response: answer');
    expect(await panel('data').locator('tr[data-dataset="hub_demo"] .problem').textContent()).toContain(
      'hub',
    );
    expect(await panel('data').locator('tr[data-dataset="broken"] .problem').textContent()).toContain(
      'missing.json is not in the picked folder',
    );
    await animals.getByRole('button', { name: 'Preview raw rows' }).click();
    await expect
      .poll(() => animals.locator('.raw-rows').textContent())
      .toContain('"question": "Tell me about the cat."');
    await animals.getByLabel('Use animals').check();
    await panel('data').getByRole('button', { name: 'Use the ticked datasets' }).click();
    expect(await panel('data').locator('.file-list').textContent()).toBe('animals (dataset_info.json)');
    await panel('data').getByLabel('val_size').fill('0');
    await panel('data').getByRole('button', { name: 'Check data' }).click();
    expect(await settle('data', 60_000)).toBe('6 training rows, 0 validation rows, 0 rejected.');
    expect(await panel('data').locator('.dataset-summary').textContent()).toContain('animals');
  });

  it('3, 9, 10: a failed check leaves no data active; the JSON error has a position; rejected rows are bounded', async () => {
    const rejectedRows = Array.from({ length: 30 }, (_, i) => ({ instruction: `Question ${i}`, input: '' }));
    const [state, text] = await checkFile('many-bad.json', JSON.stringify([...ANIMALS, ...rejectedRows]));
    expect([state, text]).toEqual(['done', '6 training rows, 0 validation rows, 30 rejected.']);
    const table = panel('data').locator('table.rejected-rows');
    expect(await table.locator('tbody tr').count()).toBe(20);
    expect(await table.locator('caption').textContent()).toBe('Rejected rows: 30 (20 shown)');
    expect(await panel('data').getByRole('link', { name: 'rejected-rows.json' }).count()).toBe(1);
    // The histogram's labels stay inside its box.
    const outside = await panel('data')
      .locator('svg.histogram')
      .evaluate(
        (svg: SVGSVGElement) =>
          [...svg.querySelectorAll('text')]
            .map((label) => label.getBBox())
            .filter((box) => box.x < 0 || box.x + box.width > 480 || box.y < 0 || box.y + box.height > 160)
            .length,
      );
    expect(outside).toBe(0);

    const [failed, message] = await checkFile('broken.json', '[\n  {"instruction": "a", "output": x}\n]');
    expect(failed).toBe('error');
    expect(message).toContain('line 2, column 34');
    expect(await panel('data').locator('.data-report').textContent()).toBe('');
    await tab('Train');
    expect(await panel('train').getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);
    expect(await panel('train').locator('.target-note').textContent()).toContain('check a dataset');
  });

  it('2, 5, 7: Start on a paused run asks before deleting; the page asks before leaving a run', async () => {
    const [state] = await checkFile('animals.json', JSON.stringify(ANIMALS));
    expect(state).toBe('done');
    const train = await board.setTrain({
      runName: 'life',
      maxSteps: 6,
      batchSize: 2,
      gradientAccumulation: 1,
      learningRate: 0.01,
      saveSteps: 2,
      evalSteps: 0,
      checkpointing: false,
      numbers: { 'Logging steps': 1, 'LoRA rank': 4 },
    });
    expect(await leavePrompted()).toBe(false);
    await train.getByRole('button', { name: 'Start' }).click();
    await expect.poll(lossPoints, { timeout: 300_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    expect(await leavePrompted()).toBe(true);
    await train.getByRole('button', { name: 'Pause' }).click();
    const paused = await settle('train', 300_000);
    expect(paused).toMatch(/^Paused at step \d+: press Resume to continue\.$/);
    expect(await leavePrompted()).toBe(false);
    await expect
      .poll(() => train.locator('.note').allTextContents())
      .toContainEqual(expect.stringMatching(/^Run “life” has checkpoint-\d+ in this browser/));
    // Resume is the primary action now; Start asks, and Cancel keeps the checkpoints.
    expect(await train.getByRole('button', { name: 'Resume' }).getAttribute('class')).toContain('primary');
    const dialogs: string[] = [];
    page.once('dialog', (dialog) => {
      dialogs.push(dialog.message());
      dialog.dismiss();
    });
    await train.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => dialogs.length).toBe(1);
    expect(dialogs[0]).toMatch(
      /^Start run “life” over\? This deletes its checkpoints in this browser \(checkpoint-/,
    );
    expect(await statusOf('train').textContent()).toBe(paused);
    await train.getByRole('button', { name: 'Resume' }).click();
    expect(await settle('train', 600_000)).toBe('Training completed after 6 steps.');
    await expect
      .poll(() => train.locator('.note').allTextContents())
      .toContainEqual(expect.stringMatching(/^Run “life” completed 6 of 6 steps in this browser/));
  });

  it('10: the chart has axis titles, distinct ticks, even step ticks and a smoothed loss', async () => {
    const canvas = panel('train').locator('canvas.chart-canvas');
    expect(await canvas.getAttribute('data-axis-titles')).toBe('step|loss|learning rate');
    const lrTicks = ((await canvas.getAttribute('data-lr-ticks')) ?? '').split(' ');
    expect(lrTicks.length).toBeGreaterThan(1);
    expect(new Set(lrTicks).size).toBe(lrTicks.length);
    expect(Number(await canvas.getAttribute('data-smoothed-points'))).toBe(6);
    const steps = ((await canvas.getAttribute('data-x-ticks')) ?? '').split(' ').map(Number);
    const gaps = steps.slice(1).map((step, i) => step - steps[i]);
    expect(new Set(gaps.slice(1)).size).toBeLessThanOrEqual(1);
    expect(steps.every(Number.isInteger)).toBe(true);
  });

  it('1, 5, 6: after a reload the settings, the chart and the completed run’s adapter come back', async () => {
    // A recorded vote for the preference checks below, kept in localStorage across the reload.
    await page.evaluate(() =>
      localStorage.setItem(
        'webtune.preference-pairs',
        JSON.stringify([
          { prompt: 'Hi', chosen: 'Hello.', rejected: 'Go.', chosenModel: 'tuned', createdAt: '2026-01-01' },
        ]),
      ),
    );
    await page.reload();
    await board.waitForGpu();
    await tab('Train');
    const train = panel('train');
    expect(await train.getByLabel('Run name').inputValue()).toBe('life');
    expect(await train.getByLabel('Max steps').inputValue()).toBe('6');
    expect(await train.getByLabel('LoRA rank').inputValue()).toBe('4');
    await loadLooseModel();
    await tab('Train');
    await expect
      .poll(() => train.locator('.note').allTextContents())
      .toContainEqual(
        expect.stringMatching(/^Run “life” completed 6 of 6 steps in this browser: use its result/),
      );
    await expect.poll(lossPoints).toBe(6);
    expect(await train.getByRole('button', { name: 'Resume' }).isDisabled()).toBe(true);
    await train.getByRole('button', { name: 'Use the trained result' }).click();
    expect(await settle('train', 120_000)).toMatch(/^Using the result of run “life” \(step 6\)/);

    await tab('Export');
    await panel('export').getByRole('button', { name: 'Prepare the adapter files' }).click();
    await settle('export', 60_000);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      panel('export').getByRole('link', { name: 'adapter_config.json' }).click(),
    ]);
    const adapterConfig = JSON.parse(readFileSync((await download.path())!, 'utf8'));
    expect(adapterConfig.r).toBe(4);
    // config.json names no _name_or_path: null, as PEFT writes an unknown base, not "picked files".
    expect(adapterConfig.base_model_name_or_path).toBeNull();
  });

  it('7, 8: preference pairs need a confirmation to clear; DPO needs a pair; one stage, one file list', async () => {
    await tab('Chat');
    const chat = panel('chat');
    expect(await chat.locator('.pairs-count').textContent()).toBe('1 preference pair recorded.');
    page.once('dialog', (dialog) => dialog.dismiss());
    await chat.getByRole('button', { name: 'Clear', exact: true }).click();
    expect(await chat.locator('.pairs-count').textContent()).toBe('1 preference pair recorded.');

    await tab('Data');
    await panel('data')
      .getByLabel('Dataset files', { exact: true })
      .setInputFiles({ name: 'other.json', mimeType: 'application/json', buffer: Buffer.from('[]') });
    await tab('Chat');
    await chat.getByRole('button', { name: 'Use for a DPO run' }).click();
    expect(await panel('data').getByLabel('Stage').inputValue()).toBe('dpo');
    // The file input no longer shows the file that is not used.
    expect(
      await panel('data')
        .getByLabel('Dataset files', { exact: true })
        .evaluate((input: HTMLInputElement) => input.files?.length),
    ).toBe(0);
    expect(await panel('data').locator('.file-list').textContent()).toContain('preference_pairs.json');
    await tab('Train');
    expect(await panel('train').getByLabel('Stage').inputValue()).toBe('dpo');
    expect(await panel('train').getByLabel('Stage').isDisabled()).toBe(true);
    await tab('Data');
    await panel('data').getByLabel('Stage').selectOption('sft');

    await tab('Chat');
    page.once('dialog', (dialog) => dialog.accept());
    await chat.getByRole('button', { name: 'Clear', exact: true }).click();
    expect(await chat.locator('.pairs-count').textContent()).toBe('0 preference pairs recorded.');
    expect(await chat.getByRole('button', { name: 'Use for a DPO run' }).isDisabled()).toBe(true);
  });

  it('8: a model reload marks the old data report stale', async () => {
    const [state] = await checkFile('animals.json', JSON.stringify(ANIMALS));
    expect(state).toBe('done');
    await loadLooseModel();
    await tab('Data');
    expect(await panel('data').locator('.data-report').textContent()).toBe(
      'The model changed: check the data again for this model.',
    );
    await tab('Train');
    expect(await panel('train').getByRole('button', { name: 'Start' }).isDisabled()).toBe(true);
  });

  it('4, 9: Remote pauses and resumes, sends the YAML shown, and the form refuses values under their minimum', async () => {
    await tab('Remote');
    const remote = panel('remote');
    await remote.getByLabel('Server', { exact: true }).fill(server.url);
    await remote.getByRole('button', { name: 'Connect' }).click();
    expect(await settle('remote', 10_000)).toMatch(/^Connected/);
    await remote.getByLabel('Model on the server', { exact: true }).fill('models/stories260K-hf');
    await remote.getByLabel('Datasets', { exact: true }).fill('data/animals.json');
    await remote.getByLabel('Train on this server', { exact: false }).check();

    await tab('Train');
    const train = panel('train');
    await train.getByLabel('Run name').fill('remote-1');
    await train.getByLabel('Learning rate', { exact: true }).fill('-1');
    await train.getByRole('button', { name: 'Start' }).click();
    expect(await settled('train', 5_000)).toEqual(['error', 'learning_rate must be at least 0, got -1']);
    await train.getByLabel('Learning rate', { exact: true }).fill('0.0002');

    await train.getByRole('button', { name: 'Start' }).click();
    await expect.poll(lossPoints, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(2);
    await train.getByRole('button', { name: 'Pause' }).click();
    expect(await settle('train', 10_000)).toMatch(
      /^Paused at step \d+ on the server: press Resume to continue from its last checkpoint\.$/,
    );
    expect(await train.getByRole('button', { name: 'Resume' }).isEnabled()).toBe(true);
    await train.getByRole('button', { name: 'Resume' }).click();
    expect(await settle('train', 10_000)).toBe('Training completed after 30 steps.');
    expect(server.configs).toHaveLength(2);
    expect(server.configs[1]).toEqual({ ...server.configs[0], resume_from_checkpoint: true });

    // The YAML preview is the config the server got (with the server's model and datasets).
    await train.getByText('The run as a LLaMA-Factory YAML').click();
    const yamlText = (await train.locator('.yaml-preview').textContent()) ?? '';
    const { output_dir: outputDir, ...shown } = parseYaml(yamlText);
    expect(outputDir).toBe('saves/remote-1');
    expect({
      ...shown,
      model_name_or_path: 'models/stories260K-hf',
      dataset: 'data/animals.json',
    }).toEqual(server.configs[0]);
    expect(server.configs[0]).toMatchObject({ learning_rate: 0.0002, lora_rank: 4, run_name: 'remote-1' });
  });

  it('YAML: copy, download and load a saved one, then run it on the server from the Remote tab', async () => {
    const train = panel('train');
    const yamlText = (await train.locator('.yaml-preview').textContent()) ?? '';
    await train.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(yamlText);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      train.getByRole('button', { name: 'Download' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('remote-1.yaml');
    expect(readFileSync((await download.path())!, 'utf8')).toBe(yamlText);

    await train.getByLabel('Load a saved YAML').setInputFiles({
      name: 'typo.yaml',
      mimeType: 'application/yaml',
      buffer: Buffer.from('stage: sft\nlora_rnak: 8\n'),
    });
    await expect.poll(() => statusOf('train').getAttribute('data-state')).toBe('error');
    expect(await statusOf('train').textContent()).toContain('lora_rnak');

    const saved = [
      'model_name_or_path: models/saved-model',
      'stage: sft',
      'finetuning_type: lora',
      'dataset: saved_data',
      'template: empty',
      'cutoff_len: 128',
      'learning_rate: 0.003',
      'lora_rank: 16',
      'lr_scheduler_type: cosine',
      'max_steps: 5',
      'warmup_ratio: 0.1',
    ].join('\n');
    await train.getByLabel('Load a saved YAML').setInputFiles({
      name: 'saved.yaml',
      mimeType: 'application/yaml',
      buffer: Buffer.from(saved),
    });
    await expect.poll(() => train.locator('.run-yaml .note').textContent()).toBe('Loaded saved.yaml.');
    expect(await train.getByLabel('Learning rate', { exact: true }).inputValue()).toBe('0.003');
    expect(await train.getByLabel('LoRA rank').inputValue()).toBe('16');
    expect(await train.getByLabel('Learning-rate schedule').inputValue()).toBe('cosine');
    expect(await panel('data').getByLabel('cutoff_len', { exact: true }).inputValue()).toBe('128');
    expect(await panel('remote').getByLabel('Model on the server', { exact: true }).inputValue()).toBe(
      'models/saved-model',
    );

    await tab('Remote');
    await panel('remote').getByRole('button', { name: 'Run the Train tab’s YAML on this server' }).click();
    expect(await page.getByRole('tab', { name: 'Train' }).getAttribute('aria-selected')).toBe('true');
    expect(await settle('train', 10_000)).toBe('Training completed after 30 steps.');
    expect(server.configs[2]).toMatchObject({
      model_name_or_path: 'models/saved-model',
      dataset: 'saved_data',
      template: 'empty',
      cutoff_len: 128,
      learning_rate: 0.003,
      lora_rank: 16,
      lr_scheduler_type: 'cosine',
      max_steps: 5,
      warmup_ratio: 0.1,
    });
    await tab('Remote');
    await panel('remote').getByLabel('Train on this server', { exact: false }).uncheck();
  });

  it('10: an empty chart has no 1e-12 ticks and no learning-rate axis', async () => {
    await tab('Train');
    await panel('train').getByLabel('Run name').fill('never-run');
    await panel('train').getByLabel('Run name').dispatchEvent('change');
    const canvas = panel('train').locator('canvas.chart-canvas');
    await expect.poll(() => canvas.getAttribute('data-loss-points')).toBe('0');
    expect(await canvas.getAttribute('data-lr-ticks')).toBe('');
    expect(await canvas.getAttribute('data-axis-titles')).toBe('step|loss');
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });

  it('9: without WebGPU the banner says so once and Train points to the Remote tab', async () => {
    const plain = await context.newPage();
    await plain.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    await plain.goto(`${site.url}/`);
    const banner = plain.getByRole('alert');
    await expect.poll(() => banner.textContent(), { timeout: 10_000 }).toContain('no WebGPU');
    expect(((await banner.textContent()) ?? '').match(/no WebGPU/g)).toHaveLength(1);
    await plain.getByRole('tab', { name: 'Train' }).click();
    expect(await plain.locator('#panel-train .target-note').textContent()).toContain(
      'connect to a server in the Remote tab',
    );
    await plain.close();
  });
});
