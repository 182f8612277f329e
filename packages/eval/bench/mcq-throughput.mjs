// Multiple-choice throughput on stories260K: whole fixture splits, questions per second.
// Run: pnpm --filter @webtune/eval bench   (builds first; whole splits from $WEBTUNE_FIXTURES or ../shared/fixtures when present, else the repository's)
import { evaluateMcq } from '@webtune/eval';
import { loadMcqTaskDirectory } from '@webtune/eval/node';
import { loadModelDirectory } from '@webtune/nn/node';
import { createDevice } from '@webtune/tensors';
import { fullFixturePath } from '@webtune/test-utils/fixtures';

const device = await createDevice();
const { model, tokenizer } = await loadModelDirectory(device, fullFixturePath('models/stories260K-hf'));
console.log(`device: ${device.info.vendor} ${device.info.architecture} (${device.info.adapterClass})`);
const runs = [
  ['mmlu_subset', 'test', 5, {}],
  ['mmlu_subset', 'test', 0, {}],
  ['mmlu_subset', 'test', 0, { maxBatchSize: 1 }],
  ['ceval_subset', 'val', 5, {}],
  ['cmmlu_subset', 'test', 0, {}],
];
for (const [name, split, nShot, batching] of runs) {
  const task = await loadMcqTaskDirectory(fullFixturePath('eval', name), { split });
  const result = await evaluateMcq(model, tokenizer, task, { nShot, ...batching });
  const { timing, overall } = result;
  console.log(
    `${name}/${split} ${nShot}-shot${batching.maxBatchSize === 1 ? ' (one question per pass)' : ''}: ` +
      `${overall.questions} questions, ${(overall.accuracy * 100).toFixed(1)}% | ${timing.questionsPerSecond.toFixed(1)} questions/s, ` +
      `${Math.round(timing.tokensPerSecond)} tokens/s, ${timing.forwardPasses} passes, ` +
      `${(timing.promptTokens / overall.questions).toFixed(0)} tokens/question, ${timing.seconds.toFixed(1)} s`,
  );
}
model.dispose();
device.destroy();
