// Base vs tuned without two copies of the weights (a LoRA adapter switched off and on), on
// stories260K: the forgetting report, pairwise answers, a local model judge and a blind session.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directorySink } from '@webtune/nn/node';
import { getPeftModel, loraConfig, type PeftModel, saveAdapter } from '@webtune/peft';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateMcq } from '../mcq/evaluate-mcq.js';
import { loadMcqTaskDirectory, runMcqEvaluation } from '../node.js';
import { BlindSession } from '../pairwise/blind-session.js';
import { adapterVariants, collectAnswers } from '../pairwise/comparison.js';
import { judgePairs, localModelJudge } from '../pairwise/judge.js';
import { preferenceRows } from '../pairwise/preference-export.js';
import { FIXTURES } from '../testing/fakes.js';
import { STORIES, storiesModel } from '../testing/stories.js';
import { evaluateForgetting, formatForgettingReport } from './forgetting-report.js';

describe.skipIf(!requireFixtures(STORIES, 'eval/mmlu_subset'))(
  'base vs tuned on stories260K with a LoRA adapter',
  () => {
    const stories = storiesModel();
    let peft: PeftModel;

    beforeAll(async () => {
      const { model: base } = stories;
      // A random (not zero-initialised) adapter, large enough to change the model's choices.
      peft = await getPeftModel(
        base,
        loraConfig({
          r: 4,
          lora_alpha: 64,
          target_modules: ['q_proj', 'v_proj', 'down_proj'],
          init_lora_weights: false,
        }),
        { seed: 3 },
      );
    });

    it('runs both variants on a general and a domain set and writes the report', async () => {
      const { model: base, tokenizer } = stories;
      const general = await loadMcqTaskDirectory(fixturePath('eval/mmlu_subset'), { split: 'val' });
      const domain = await loadMcqTaskDirectory(join(FIXTURES, 'tiny-task'));
      const mcq = { nShot: 1, limit: 2 };
      const variants = adapterVariants(peft);
      const { report, results } = await evaluateForgetting(variants, tokenizer, {
        general: [general],
        domainTasks: [domain],
        domainTexts: { name: 'stories', texts: ['Once upon a time, there was a little girl named Lily.'] },
        mcq,
      });
      expect(results).toHaveLength(2);
      expect(
        report.comparisons.map((comparison) => [comparison.name, comparison.role, comparison.metric]),
      ).toEqual([
        ['mmlu_subset', 'general', 'accuracy'],
        ['tiny-task', 'domain', 'accuracy'],
        ['stories', 'domain', 'perplexity'],
      ]);
      // The base side is the model with the adapter off: the same numbers as the model without it.
      peft.setAdapter(null);
      const plain = await evaluateMcq(base, tokenizer, general, mcq);
      peft.setAdapter('default');
      expect(results[0].base.questions.map((question) => question.logits)).toEqual(
        plain.questions.map((question) => question.logits),
      );
      // The adapter changes the model: the tuned logits differ.
      expect(results[0].tuned.questions.map((question) => question.logits)).not.toEqual(
        plain.questions.map((question) => question.logits),
      );
      const perplexity = report.comparisons[2];
      expect(perplexity.tuned).not.toBeCloseTo(perplexity.base, 3);
      expect(['improved', 'improved-with-forgetting', 'forgot', 'worse', 'no-change']).toContain(
        report.verdict,
      );
      expect(Boolean(report.advice)).toBe(report.generalChange <= -2);
      const markdown = formatForgettingReport(report);
      expect(markdown).toContain('| mmlu_subset | general | accuracy |');
      console.log(markdown);
    });

    it('collects both answers from one PeftModel, judges them with a local model, and votes blind', async () => {
      const { model: base, tokenizer } = stories;
      const set = await collectAnswers(
        adapterVariants(peft),
        tokenizer,
        ['Once upon a time', 'Tom had a ball.'],
        {
          maxNewTokens: 10,
        },
      );
      expect(set.models).toEqual(['base', 'tuned']);
      peft.setAdapter(null);
      const baseOnly = await collectAnswers(
        [
          { name: 'a', model: base },
          { name: 'b', model: base },
        ],
        tokenizer,
        ['Once upon a time', 'Tom had a ball.'],
        { maxNewTokens: 10 },
      );
      peft.setAdapter('default');
      expect(set.pairs.map((pair) => pair.answers[0])).toEqual(baseOnly.pairs.map((pair) => pair.answers[0]));
      expect(set.pairs.map((pair) => pair.answers[1])).not.toEqual(set.pairs.map((pair) => pair.answers[0]));

      // A story model makes a poor judge: its replies hold no verdict, and are counted as such.
      const judged = await judgePairs(set, localModelJudge(base, tokenizer, { maxNewTokens: 8 }), {
        concurrency: 1,
      });
      expect(judged.pairs).toHaveLength(2);
      expect(judged.invalid + judged.summary.total).toBe(2);

      const session = BlindSession.create(set, { seed: 1 });
      for (let index = 0; index < session.length; index++) {
        const item = session.item(index);
        session.vote(
          index,
          item.a === set.pairs.find((pair) => pair.prompt === item.prompt)!.answers[1] ? 'A' : 'B',
        );
      }
      const result = session.unblind();
      expect(result.summary.wins).toEqual([0, 2]);
      const rows = preferenceRows(set, result.outcomes);
      expect(rows.map((row) => row.chosen.value).sort()).toEqual(
        set.pairs.map((pair) => pair.answers[1]).sort(),
      );
    });

    it('runs `webtune eval mcq` from a model folder and a saved adapter, and writes results.json / results.md', async () => {
      const { tokenizer } = stories;
      const folder = await mkdtemp(join(tmpdir(), 'webtune-eval-'));
      try {
        await saveAdapter(peft, directorySink(join(folder, 'adapter')));
        const task = join(FIXTURES, 'tiny-task');
        const fromDisk = await runMcqEvaluation({
          task,
          model: fixturePath(STORIES),
          adapter: join(folder, 'adapter'),
          nShot: 1,
          outputDir: join(folder, 'out'),
        });
        const inMemory = await evaluateMcq(peft.model, tokenizer, await loadMcqTaskDirectory(task), {
          nShot: 1,
        });
        expect(fromDisk.questions.map((question) => question.prediction)).toEqual(
          inMemory.questions.map((question) => question.prediction),
        );
        for (const [index, question] of fromDisk.questions.entries()) {
          for (let letter = 0; letter < 4; letter++) {
            expect(question.logits[letter]).toBeCloseTo(inMemory.questions[index].logits[letter], 4);
          }
        }
        const saved = JSON.parse(await readFile(join(folder, 'out', 'results.json'), 'utf8'));
        expect(saved.overall).toEqual(fromDisk.overall);
        expect(saved.questions).toHaveLength(9);
        expect(await readFile(join(folder, 'out', 'results.md'), 'utf8')).toContain(
          // No chat_template and no template named: LLaMA-Factory's choice, `empty`.
          '# tiny-task (test, 1-shot, en, template empty)',
        );
      } finally {
        await rm(folder, { recursive: true, force: true });
      }
    });
  },
);
