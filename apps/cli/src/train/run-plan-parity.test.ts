/*
 * One config, one run: `webtune train` (a config file and key=value overrides) and the webui API
 * (`POST /api/runs` with the config as JSON) make the same run plan, and the same as the web
 * app's worker (apps/web/test/run-plan-parity.test.ts): the training arguments, the method, the
 * task, the generation options and the first micro-batch's token ids all equal one expected file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EncodedExample } from '@webtune/data';
import { Tokenizer } from '@webtune/tokenizers';
import { epochOrder, microBatchesOf, type RunPlan } from '@webtune/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../testing/run-cli.js';
import { planOfRequest } from '../webui/run-request.js';
import { planFromCommandLine } from './config.js';
import { prepareRunData } from './prepare-run.js';

const CONFIG = join(REPO_ROOT, 'examples/run-plan/lora-sft.json');
const EXPECTED = join(REPO_ROOT, 'examples/run-plan/lora-sft.expected.json');
const MODEL = join(REPO_ROOT, 'examples/quickstart/model');

async function summaryOf(plan: RunPlan, tokenizer: Tokenizer) {
  const data = await prepareRunData(plan, tokenizer);
  const train = data.train as EncodedExample[];
  const args = plan.trainingArguments;
  const order = epochOrder(train.length, args.seed ?? 42, 0, args.shuffle ?? true);
  const first = microBatchesOf(order, args.perDeviceTrainBatchSize ?? 8)[0];
  return JSON.parse(
    JSON.stringify({
      trainingArguments: args,
      method: plan.method,
      task: plan.task,
      generation: plan.generation,
      actions: plan.actions,
      trainRows: train.length,
      validationRows: data.validation.length,
      firstBatchInputIds: first.map((index) =>
        Array.from((train[index] as { inputIds: Int32Array }).inputIds),
      ),
    }),
  );
}

describe('one config, one run plan', () => {
  const workingDirectory = process.cwd();
  let tokenizer: Tokenizer;
  beforeAll(() => {
    // The config's paths are relative to the repository root, as the examples' are.
    process.chdir(REPO_ROOT);
    tokenizer = Tokenizer.fromJSON(
      readFileSync(join(MODEL, 'tokenizer.json'), 'utf8'),
      readFileSync(join(MODEL, 'tokenizer_config.json'), 'utf8'),
    );
  });
  afterAll(() => process.chdir(workingDirectory));

  it('the CLI and the webui API plan the run the expected file holds', async () => {
    const fromFile = await summaryOf(planFromCommandLine(CONFIG, []), tokenizer);
    if (process.env.WEBTUNE_WRITE_RUN_PLAN) writeFileSync(EXPECTED, `${JSON.stringify(fromFile, null, 1)}\n`);
    expect(existsSync(EXPECTED)).toBe(true);
    const expected = JSON.parse(readFileSync(EXPECTED, 'utf8'));
    expect(fromFile).toEqual(expected);

    // Overrides that restate the file's values change nothing, in either spelling.
    const overridden = planFromCommandLine(CONFIG, [
      'seed=7',
      '--lora_rank',
      '4',
      'lr_scheduler_kwargs={"num_cycles": 2}',
    ]);
    expect(await summaryOf(overridden, tokenizer)).toEqual(expected);

    const body = JSON.parse(readFileSync(CONFIG, 'utf8'));
    const fromApi = await summaryOf(planOfRequest(body, join(REPO_ROOT, 'saves'), 'run-1'), tokenizer);
    expect(fromApi).toEqual(expected);

    // The plan is LLaMA-Factory's: alpha 2 x rank, checkpointing on, strategies by epoch.
    expect(expected.method.config.lora_alpha).toBe(8);
    expect(expected.trainingArguments).toMatchObject({
      gradientCheckpointing: true,
      evalStrategy: 'epoch',
      saveStrategy: 'epoch',
      lrSchedulerType: 'cosine_with_restarts',
      lrSchedulerKwargs: { num_cycles: 2 },
    });
    expect(expected.firstBatchInputIds).toHaveLength(2);
  });
});
