/*
 * The web app's worker plans a run from a LLaMA-Factory config exactly as `webtune train` and the
 * webui API do (apps/cli/src/train/run-plan-parity.test.ts): the same training arguments, method,
 * task, generation options and first micro-batch as examples/run-plan/lora-sft.expected.json.
 * Runs in Node: planning and data preparation need no device.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@webtune/tokenizers';
import { epochOrder, microBatchesOf } from '@webtune/train';
import { describe, expect, it } from 'vitest';
import { boardTemplate, planInBrowser, prepareBrowserData } from '../src/engine/browser-plan.js';

const root = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

describe('the worker plans the run the CLI plans', () => {
  it('makes the expected run plan from examples/run-plan/lora-sft.json', async () => {
    const config = JSON.parse(readFileSync(root('examples/run-plan/lora-sft.json'), 'utf8'));
    const expected = JSON.parse(readFileSync(root('examples/run-plan/lora-sft.expected.json'), 'utf8'));
    const tokenizer = Tokenizer.fromJSON(
      readFileSync(root('examples/quickstart/model/tokenizer.json'), 'utf8'),
      readFileSync(root('examples/quickstart/model/tokenizer_config.json'), 'utf8'),
    );
    // As the worker does: the page's config, the picked files, the loaded model's location.
    const plan = planInBrowser(config, {
      location: 'quickstart/model',
      datasets: ['facts.json'],
      runName: 'run-1',
    });
    const files = { 'facts.json': new Blob([readFileSync(root('examples/quickstart/data/facts.json'))]) };
    const template = plan.data.usesTemplate
      ? boardTemplate(tokenizer, plan.data.template ?? undefined)
      : undefined;
    const prepared = await prepareBrowserData(plan, files, tokenizer, template);
    const args = plan.trainingArguments;
    const order = epochOrder(prepared.train.length, args.seed ?? 42, 0, args.shuffle ?? true);
    const first = microBatchesOf(order, args.perDeviceTrainBatchSize ?? 8)[0];
    const summary = JSON.parse(
      JSON.stringify({
        trainingArguments: args,
        method: plan.method,
        task: plan.task,
        generation: plan.generation,
        actions: plan.actions,
        trainRows: prepared.train.length,
        validationRows: prepared.validation.length,
        firstBatchInputIds: first.map((index) =>
          Array.from((prepared.train[index] as { inputIds: Int32Array }).inputIds),
        ),
      }),
    );
    expect(summary).toEqual(expected);
  });
});
