/*
 * The steps every browser check of the board takes, on one playwright page: tabs and panels,
 * waiting for a TaskStatus to end, waiting for the GPU, loading a model from a URL, checking a
 * dataset in the Data tab and filling the Train tab's settings.
 */
import type { Locator, Page } from 'playwright-core';

/**
 * Polls `read` until `done` holds for its value (also in hooks, where expect.poll is not allowed);
 * fails after `timeout` ms naming what it waited for and the last value seen.
 */
export async function waitUntil<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  { timeout = 30_000, interval = 200 } = {},
): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${String(value)})`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A dataset file as the Data tab's file input receives it. */
export interface DataFile {
  name: string;
  /** The file's text, or rows written as JSON. */
  contents: string | readonly object[];
}

/** What the Data tab's Check data uses besides the files (fields left out keep their value). */
export interface DataOptions {
  stage?: string;
  cutoffLen?: number;
  valSize?: number;
}

/** Train tab settings by label (fields left out keep their value). */
export interface TrainOptions {
  method?: string;
  runName?: string;
  maxSteps?: number;
  batchSize?: number;
  gradientAccumulation?: number;
  learningRate?: number;
  schedule?: string;
  saveSteps?: number;
  evalSteps?: number;
  checkpointing?: boolean;
  /** Other number fields, by their label. */
  numbers?: Record<string, number>;
  /** Other text fields, by their label. */
  texts?: Record<string, string>;
}

export type TaskState = 'done' | 'error';

/** The board's steps on `page`. */
export function boardPage(page: Page) {
  const panel = (id: string) => page.locator(`#panel-${id}`);
  const tab = async (name: string) => {
    await page.getByRole('tab', { name }).click();
    await waitUntil(
      `tab ${name} selected`,
      () => page.getByRole('tab', { name }).getAttribute('aria-selected'),
      (selected) => selected === 'true',
    );
  };
  /** A TaskStatus: `target` itself when it is one, else the first inside it (a panel, a form). */
  const statusOf = async (target: Locator) =>
    (await target.evaluate((element) => element.classList.contains('task-status')))
      ? target
      : target.locator('.task-status').first();
  /** Waits for a TaskStatus to end; returns its state and text. */
  const settled = async (target: Locator, timeout = 120_000): Promise<[TaskState, string]> => {
    const status = await statusOf(target);
    await waitUntil(
      'a task to end',
      () => status.getAttribute('data-state'),
      (state) => state === 'done' || state === 'error',
      { timeout },
    );
    return [(await status.getAttribute('data-state')) as TaskState, (await status.textContent()) ?? ''];
  };
  /** Waits for a TaskStatus to end and returns its text; fails with the board's message on an error. */
  const settle = async (target: Locator, timeout = 120_000) => {
    const [state, text] = await settled(target, timeout);
    if (state === 'error') throw new Error(`the board reported: ${text}`);
    return text;
  };
  const waitForGpu = () =>
    page.waitForFunction(
      () => document.querySelector('.gpu-status')?.textContent?.startsWith('GPU: '),
      null,
      {
        timeout: 60_000,
      },
    );
  /** Loads a model folder served over HTTP with the Model tab's URL field. */
  const loadModelFromUrl = async (url: string) => {
    await tab('Model');
    await panel('model').getByLabel('Model folder URL').fill(url);
    await panel('model').getByRole('button', { name: 'Load from URL' }).click();
    return settle(panel('model'), 120_000);
  };
  /** Picks dataset files in the Data tab and checks them; returns the outcome (errors are not thrown). */
  const checkData = async (files: readonly DataFile[], options: DataOptions = {}) => {
    await tab('Data');
    const data = panel('data');
    if (options.stage !== undefined) await data.getByLabel('Stage').selectOption(options.stage);
    await data.getByLabel('Dataset files', { exact: true }).setInputFiles(
      files.map(({ name, contents }) => ({
        name,
        mimeType: 'application/json',
        buffer: Buffer.from(typeof contents === 'string' ? contents : JSON.stringify(contents)),
      })),
    );
    if (options.cutoffLen !== undefined) await data.getByLabel('cutoff_len').fill(String(options.cutoffLen));
    if (options.valSize !== undefined) await data.getByLabel('val_size').fill(String(options.valSize));
    await data.getByRole('button', { name: 'Check data' }).click();
    return settled(data, 60_000);
  };
  /** Opens the Train tab and fills the settings given. */
  const setTrain = async (options: TrainOptions) => {
    await tab('Train');
    const train = panel('train');
    if (options.method !== undefined) await train.getByLabel('Method').selectOption(options.method);
    const numbers: [string, number | undefined][] = [
      ['Max steps', options.maxSteps],
      ['Batch size', options.batchSize],
      ['Gradient accumulation', options.gradientAccumulation],
      ['Save steps', options.saveSteps],
      ['Eval steps', options.evalSteps],
      ...Object.entries(options.numbers ?? {}),
    ];
    for (const [label, value] of numbers) {
      if (value !== undefined) await train.getByLabel(label, { exact: true }).fill(String(value));
    }
    if (options.learningRate !== undefined) {
      await train.getByLabel('Learning rate', { exact: true }).fill(String(options.learningRate));
    }
    if (options.runName !== undefined) await train.getByLabel('Run name').fill(options.runName);
    for (const [label, value] of Object.entries(options.texts ?? {})) {
      await train.getByLabel(label, { exact: true }).fill(value);
    }
    if (options.schedule !== undefined) {
      await train.getByLabel('Learning-rate schedule').selectOption(options.schedule);
    }
    if (options.checkpointing !== undefined) {
      await train.getByLabel('Gradient checkpointing').setChecked(options.checkpointing);
    }
    return train;
  };
  return { page, panel, tab, settled, settle, waitForGpu, loadModelFromUrl, checkData, setTrain };
}

export type BoardPage = ReturnType<typeof boardPage>;
