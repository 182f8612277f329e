import { generate } from '@webtune/nn';
import { requireFixtures } from '@webtune/test-utils';
import { describe, expect, it } from 'vitest';
import { EvaluationError } from '../errors.js';
import { generationMetrics } from '../metrics/generation-metrics.js';
import { STORIES, storiesModel } from '../testing/stories.js';
import { parsePredictionsJsonl, predict, predictExamplesFrom, predictionsToJsonl } from './predict.js';

describe('prediction files', () => {
  it('round-trips JSON Lines and names the line of a bad row', () => {
    const records = [
      { prompt: 'p1', predict: '你好', label: '你好啊' },
      { prompt: 'p2', predict: 'a "quoted"\nanswer', label: 'b' },
    ];
    const text = predictionsToJsonl(records);
    expect(text.split('\n')).toHaveLength(3);
    expect(parsePredictionsJsonl(text)).toEqual(records);
    expect(() => parsePredictionsJsonl(`${text}{"predict": 1}\n`, 'out.jsonl')).toThrow(
      'out.jsonl:3: expected an object with string fields "predict" and "label"',
    );
    expect(() => parsePredictionsJsonl('\n{oops', 'out.jsonl')).toThrow(/^out.jsonl:2: not valid JSON/);
  });

  it('takes prompts and labels from supervised examples', () => {
    const examples = predictExamplesFrom([
      {
        kind: 'supervised',
        location: { file: 'data.json', row: 1 },
        conversation: {
          system: 'sys',
          turns: [
            { role: 'user', content: 'q1' },
            { role: 'assistant', content: 'a1' },
            { role: 'user', content: 'q2' },
            { role: 'assistant', content: 'a2' },
          ],
        },
      },
    ]);
    expect(examples).toEqual([
      {
        prompt: {
          system: 'sys',
          turns: [
            { role: 'user', content: 'q1' },
            { role: 'assistant', content: 'a1' },
            { role: 'user', content: 'q2' },
          ],
        },
        label: 'a2',
      },
    ]);
    expect(() =>
      predictExamplesFrom([
        {
          kind: 'supervised',
          location: { file: 'd.json', line: 4 },
          conversation: { turns: [{ role: 'user', content: 'q' }] },
        },
      ]),
    ).toThrow(EvaluationError);
  });
});

describe.skipIf(!requireFixtures(STORIES))('predict on stories260K', () => {
  const stories = storiesModel();

  it('generates in batches what generate gives one by one, and scores it', async () => {
    const { model, tokenizer } = stories;
    const prompts = ['Once upon a time', 'Lily and Tom went to the park.', 'The cat'];
    const result = await predict(
      model,
      tokenizer,
      prompts.map((prompt, index) => ({
        prompt,
        label: index === 0 ? 'there was a little girl named Lily.' : 'something else',
      })),
      { maxNewTokens: 12, batchSize: 2 },
    );
    expect(result.records).toHaveLength(3);
    for (const [index, prompt] of prompts.entries()) {
      // No chat_template: LLaMA-Factory's `empty` template, which leaves a one-turn prompt as its text
      // and writes no BOS; generation from the same ids gives the same answer.
      expect(result.records[index].prompt).toBe(prompt);
      const ids = tokenizer.encode(prompt, { addSpecialTokens: false });
      const [alone] = await generate(model, tokenizer, [ids], { maxNewTokens: 12 });
      expect(result.records[index].predict).toBe(alone.text);
    }
    expect(result.metrics).toEqual(generationMetrics(result.records));
    expect(result.timing.newTokens).toBeGreaterThan(0);
    console.log(
      `predict: ${result.timing.samplesPerSecond.toFixed(2)} samples/s, ${result.timing.tokensPerSecond.toFixed(1)} new tokens/s`,
    );

    // Labels equal to the model's own answers score 100 on every metric.
    const echo = await predict(
      model,
      tokenizer,
      result.records.map((record, index) => ({ prompt: prompts[index], label: record.predict })),
      { maxNewTokens: 12, batchSize: 3 },
    );
    expect(echo.metrics['bleu-4']).toBeCloseTo(100, 10);
    expect(echo.metrics['rouge-1']).toBeCloseTo(100, 10);
    expect(echo.metrics['rouge-2']).toBeCloseTo(100, 10);
    expect(echo.metrics['rouge-l']).toBeCloseTo(100, 10);
  });
});
