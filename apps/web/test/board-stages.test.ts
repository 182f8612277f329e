/*
 * Stages kto, rm and ppo on the board, in Chromium with WebGPU on SwiftShader, on stories260K: a
 * few steps of each, read back from the stage metrics chart (KTO's rewards/* and kl; PPO's reward,
 * KL, value and policy losses). PPO's reward model is the rm run trained just before, in this page.
 */
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import type { TrainerEvent } from '@webtune/train';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoardPage, boardPage } from './board-page.js';
import { browserAvailable, distFolder, launchChromium } from './chromium.js';
import { type ProtocolServer, startProtocolServer } from './protocol-server.js';
import { type StaticServer, serveFolders } from './static-server.js';

const ready = requireFixtures('models/stories260K-hf') && browserAvailable();

const ANIMALS = ['cat', 'dog', 'bird', 'fox'];
/** KTO rows: a good and a bad answer per animal, marked with LLaMA-Factory's kto_tag column. */
const KTO_ROWS = ANIMALS.flatMap((animal) => [
  {
    instruction: `Tell me about the ${animal}.`,
    input: '',
    output: `The ${animal} sat on the mat.`,
    kto_tag: true,
  },
  { instruction: `Tell me about the ${animal}.`, input: '', output: 'No.', kto_tag: false },
]);
const PAIRS = ANIMALS.map((animal) => ({
  instruction: `Tell me about the ${animal}.`,
  input: '',
  chosen: `The ${animal} sat on the mat.`,
  rejected: 'No.',
}));
const PROMPTS = ANIMALS.map((animal) => ({
  instruction: `Tell me about the ${animal}.`,
  input: '',
  output: `The ${animal} sat on the mat.`,
}));

/** A PPO run on a stand-in server whose reward never moves while its KL runs away (target 6). */
function runawayPpo(): TrainerEvent[] {
  const memory = { liveBytes: 1 << 20, peakBytes: 2 << 20 };
  const kl = [0, 2, 5, 9, 14, 22];
  return [
    {
      type: 'train-start',
      totalSteps: kl.length,
      stepsPerEpoch: kl.length,
      trainRows: 4,
      validationRows: 0,
      trainableParameters: 1000,
      resumedFrom: null,
      firstStep: 1,
    },
    ...kl.map(
      (value, i): TrainerEvent => ({
        type: 'step-end',
        step: i + 1,
        totalSteps: kl.length,
        epoch: (i + 1) / kl.length,
        loss: 0.3,
        learningRate: 1e-4,
        gradNorm: Number.NaN,
        tokens: 16,
        tokensPerSecond: 100,
        stepMs: 30,
        elapsedMs: (i + 1) * 30,
        remainingMs: (kl.length - i - 1) * 30,
        memory,
        metrics: { reward: 0.4173, 'ppo/kl': value, 'ppo/value_loss': 0.2, 'ppo/policy_loss': -0.01 },
      }),
    ),
    {
      type: 'train-end',
      reason: 'completed',
      step: kl.length,
      totalSteps: kl.length,
      loss: 0.3,
      elapsedMs: kl.length * 30,
      memory,
      lastCheckpoint: null,
    },
  ];
}

/** The stage chart's table: one record per step, metric name to its exact value. */
async function chartedValues(train: Locator): Promise<Record<string, number>[]> {
  return train.locator('.metrics-chart tbody tr').evaluateAll((rows) =>
    rows.map((row) => {
      const values: Record<string, number> = { step: Number(row.getAttribute('data-step')) };
      for (const cell of row.querySelectorAll('td[data-value]')) {
        values[cell.getAttribute('data-metric') ?? ''] = Number(cell.getAttribute('data-value'));
      }
      return values;
    }),
  );
}

describe.skipIf(!ready)('stages kto, rm and ppo on the board (Chromium, SwiftShader)', () => {
  let site: StaticServer;
  let browser: Browser;
  let page: Page;
  let board: BoardPage;
  let server: ProtocolServer;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    site = await serveFolders({ '/': distFolder, '/model/': fixturePath('models/stories260K-hf') });
    server = await startProtocolServer(runawayPpo());
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
    board = boardPage(page);
    await page.goto(`${site.url}/`);
    await board.waitForGpu();
    expect(await board.loadModelFromUrl(`${site.url}/model/`)).toMatch(/^Loaded /);
  });

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await server?.close();
  });

  it('runs KTO and charts rewards/chosen, rewards/rejected, margins and kl for every step', async () => {
    expect(
      await board.checkData([{ name: 'kto.json', contents: KTO_ROWS }], {
        stage: 'kto',
        cutoffLen: 64,
        valSize: 0,
      }),
    ).toEqual(['done', '8 training rows, 0 validation rows, 0 rejected.']);
    const train = await board.setTrain({
      method: 'lora',
      runName: 'kto-1',
      maxSteps: 3,
      batchSize: 8,
      gradientAccumulation: 1,
      learningRate: 0.01,
      schedule: 'constant',
      checkpointing: false,
      saveSteps: 100,
    });
    expect(await train.getByLabel('Stage').inputValue()).toBe('kto');
    expect(await train.getByLabel('KTO desirable weight').isVisible()).toBe(true);
    expect(await train.getByLabel('Reward model (reward_model)').isVisible()).toBe(false);
    await train.getByRole('button', { name: 'Start' }).click();
    expect(await board.settle(train, 300_000)).toBe('Training completed after 3 steps.');

    const rows = await chartedValues(train);
    expect(rows.map((row) => row.step)).toEqual([1, 2, 3]);
    for (const row of rows) {
      for (const name of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'kl'])
        expect(Number.isFinite(row[name]), `${name} at step ${row.step}`).toBe(true);
      // Every batch holds both kinds of answer: the margin is their difference.
      expect(row['rewards/margins']).toBeCloseTo(row['rewards/chosen'] - row['rewards/rejected'], 5);
    }
    // Before the first update the policy is the reference: every reward is 0. After it, the
    // desirable answers gain on the undesirable ones.
    expect(Math.abs(rows[0]['rewards/chosen'])).toBeLessThan(1e-5);
    expect(Math.abs(rows[0]['rewards/rejected'])).toBeLessThan(1e-5);
    expect(rows[2]['rewards/margins']).toBeGreaterThan(0);
    // One small chart per metric, each with every step; the live figures show the last step.
    const canvas = train.locator('canvas.metric-canvas[data-metric="rewards/margins"]');
    expect(await canvas.getAttribute('data-points')).toBe('3');
    expect(await train.locator('dd[data-metric="rewards/margins"]').textContent()).toBe(
      await train.locator('tr[data-step="3"] td[data-metric="rewards/margins"]').textContent(),
    );
  });

  it('trains a reward model, then runs PPO against it and charts reward, KL and both losses', async () => {
    expect(
      await board.checkData([{ name: 'pairs.json', contents: PAIRS }], { stage: 'rm', valSize: 0 }),
    ).toEqual(['done', '4 training rows, 0 validation rows, 0 rejected.']);
    let train = await board.setTrain({ runName: 'rm-1', maxSteps: 2, batchSize: 4, learningRate: 0.01 });
    await train.getByRole('button', { name: 'Start' }).click();
    expect(await board.settle(train, 300_000)).toBe('Training completed after 2 steps.');
    expect((await chartedValues(train)).map((row) => Number.isFinite(row.accuracy))).toEqual([true, true]);

    expect(
      await board.checkData([{ name: 'prompts.json', contents: PROMPTS }], { stage: 'ppo', valSize: 0 }),
    ).toEqual(['done', '4 training rows, 0 validation rows, 0 rejected.']);
    train = await board.setTrain({
      runName: 'ppo-1',
      maxSteps: 2,
      batchSize: 2,
      learningRate: 0.01,
      numbers: { 'PPO epochs': 1, 'Answer length (max_new_tokens)': 6 },
      texts: { 'Reward model (reward_model)': 'no-such-run' },
    });
    expect(await train.getByRole('button', { name: 'Pause' }).isDisabled()).toBe(true);
    await train.getByRole('button', { name: 'Start' }).click();
    const [state, message] = await board.settled(train, 120_000);
    expect([state, message]).toEqual([
      'error',
      expect.stringContaining('no run “no-such-run” in this browser'),
    ]);

    await train.getByLabel('Reward model (reward_model)', { exact: true }).fill('rm-1');
    await train.getByRole('button', { name: 'Start' }).click();
    expect(await board.settle(train, 300_000)).toBe('Training completed after 2 steps.');
    expect(await train.locator('.log').textContent()).toContain('reward model: run rm-1');
    const rows = await chartedValues(train);
    expect(rows.map((row) => row.step)).toEqual([1, 2]);
    for (const row of rows) {
      for (const name of ['reward', 'ppo/kl', 'ppo/value_loss', 'ppo/policy_loss', 'ppo/kl_coef'])
        expect(Number.isFinite(row[name]), `${name} at step ${row.step}`).toBe(true);
      expect(row['ppo/value_loss']).toBeGreaterThan(0);
    }
    // The first rollout comes from the untouched policy, which is the reference: no KL yet.
    expect(Math.abs(rows[0]['ppo/kl'])).toBeLessThan(1e-3);
    // The adaptive coefficient starts at 0.2 and moves with the KL.
    expect(rows[0]['ppo/kl_coef']).toBeGreaterThan(0);
    for (const name of ['reward', 'ppo/kl', 'ppo/value_loss', 'ppo/policy_loss'])
      expect(
        await train.locator(`canvas.metric-canvas[data-metric="${name}"]`).getAttribute('data-points'),
      ).toBe('2');
    expect(consoleErrors).toEqual([]);
  });

  it('warns on the chart and in the log when a PPO reward stays flat and its KL runs away', async () => {
    await board.tab('Remote');
    const remote = board.panel('remote');
    await remote.getByLabel('Server', { exact: true }).fill(server.url);
    await remote.getByRole('button', { name: 'Connect' }).click();
    expect(await board.settle(remote, 10_000)).toMatch(/^Connected/);
    await remote.getByLabel('Model on the server', { exact: true }).fill('models/stories260K-hf');
    await remote.getByLabel('Datasets', { exact: true }).fill('data/prompts.json');
    await remote.getByLabel('Train on this server', { exact: false }).check();
    const train = await board.setTrain({ runName: 'ppo-remote', numbers: { 'PPO KL target': 6 } });
    await train.getByRole('button', { name: 'Start' }).click();
    expect(await board.settle(train, 30_000)).toBe('Training completed after 6 steps.');
    expect(server.configs[0]).toMatchObject({ stage: 'ppo', reward_model: 'rm-1', ppo_target: 6 });
    // KL 14 at step 5 is over twice the target; the reward has not moved for 4 steps at step 4.
    const log = (await train.locator('.log').textContent()) ?? '';
    expect(log).toContain('warning at step 4: PPO reward flat: 0.4173 to 0.4173 over the last 4 steps.');
    expect(log).toContain('warning at step 5: PPO KL exploding: 14, over twice the target of 6.');
    const markers = await train.locator('.training-chart .markers li').allTextContents();
    expect(markers.filter((text) => /PPO reward flat|PPO KL exploding/.test(text))).toHaveLength(2);
    expect((await chartedValues(train)).map((row) => row['ppo/kl'])).toEqual([0, 2, 5, 9, 14, 22]);
  });
});
