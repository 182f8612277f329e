import { memoryFileSource } from '@webtune/nn';
import { loadAdapter, saveAdapter } from '@webtune/peft';
import { clearTape, createDevice, type Device } from '@webtune/tensors';
import { requireFixtures } from '@webtune/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryStorage } from './checkpoint/training-storage.js';
import type { SupervisedRow } from './data/rows.js';
import { trainablePeftModel } from './model/trainable-model.js';
import { applyMethod } from './plan/apply-plan.js';
import { planRun } from './plan/run-plan.js';
import { supervisedTask } from './tasks/sft-task.js';
import { DATASETS, identityRows, loadStories, STORIES } from './testing/stories.js';
import { evaluate, train } from './trainer.js';

// pissa_convert: the adapter the run saves is a plain LoRA of rank 2r for the untouched base, and
// that base + adapter scores held text exactly as the trained PiSSA model does.
describe.skipIf(!requireFixtures(STORIES, DATASETS))('PiSSA with pissa_convert on stories260K', () => {
  let device: Device;
  let trainRows: SupervisedRow[];
  let heldRows: SupervisedRow[];

  beforeAll(async () => {
    device = await createDevice();
    const { model, tokenizer } = await loadStories(device);
    model.dispose();
    const rows = await identityRows(tokenizer, { rows: 12, cutoffLen: 96 });
    trainRows = rows.slice(0, 8);
    heldRows = rows.slice(8);
  });
  afterAll(() => device?.destroy());
  afterEach(() => clearTape());

  it('converted base + adapter = trained PiSSA model (held-text loss); the unconverted one is far off', async () => {
    const plan = planRun({
      model_name_or_path: 'stories260K-hf',
      dataset: 'identity',
      output_dir: 'saves/pissa',
      lora_rank: 4,
      lora_target: 'q_proj,v_proj,down_proj',
      pissa_init: true,
      pissa_iter: -1,
      pissa_convert: true,
    });
    const { model } = await loadStories(device);
    const applied = await applyMethod(model, plan.method, { seed: 5 });
    const task = supervisedTask();
    const storage = memoryStorage();
    await train({
      model: applied.trainable,
      task,
      train: trainRows,
      args: { perDeviceTrainBatchSize: 4, maxSteps: 4, learningRate: 2e-2, lrSchedulerType: 'constant' },
      storage,
    });
    const trained = await evaluate(applied.trainable, task, heldRows, 4);

    const files = new Map([...storage.files].filter(([name]) => !name.includes('/')));
    const config = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!));
    expect(config).toMatchObject({ r: 8, lora_alpha: 16, init_lora_weights: true });
    const { model: base } = await loadStories(device);
    const converted = await loadAdapter(base, memoryFileSource(files, 'output'));
    const reloaded = await evaluate(trainablePeftModel(converted), task, heldRows, 4);
    expect(Math.abs(reloaded.loss - trained.loss)).toBeLessThan(1e-4);

    // The same adapter saved as trained (against the residual base) does not fit the original base.
    const raw = memoryStorage();
    await saveAdapter(applied.peft!, raw);
    const { model: other } = await loadStories(device);
    const unconverted = await loadAdapter(other, memoryFileSource(raw.files, 'raw'));
    const wrong = await evaluate(trainablePeftModel(unconverted), task, heldRows, 4);
    expect(wrong.loss - trained.loss).toBeGreaterThan(0.5);
    for (const m of [model, base, other]) m.dispose();
  });
});
