import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { perplexity } from '@webtune/nn';
import { numberOption, optional, parseCommandLine, required } from '../args.js';
import { loadModel, openDevice, requireDirectory } from '../model-loading.js';
import { bold, ProgressBar, UsageError } from '../ui.js';

export const evalHelp = `webtune eval perplexity|mcq --model DIR [--adapter DIR] ... [--json]

perplexity --file TEXT

Perplexity of a text file under the model, with @webtune/nn's convention: the text is tokenized
whole (BOS added where the tokenizer adds one), every token after the first is scored once; texts
longer than the window go through overlapping windows.

Options:
  --model DIR       Hugging Face model folder (or hub id)
  --adapter DIR     PEFT adapter folder to apply
  --file PATH       the text to score
  --window N        most tokens per forward pass (default min(max_position_embeddings, 1024))
  --stride N        tokens between window starts (default window / 2)
  --json            print {"perplexity", "nll", "tokens"} only

mcq --task DIR
Multiple-choice benchmarks in LLaMA-Factory's layout (MMLU, C-Eval, CMMLU: dev/ val/ test/ CSVs
per subject and mapping.json), scored by @webtune/eval from the logits of the A/B/C/D tokens.

  --task DIR        the task folder
  --split S         test (default) or val (C-Eval's test split has no answers)
  --n-shot N        solved dev examples before each question (default 5)
  --lang L          en or zh header (default: the task's)
  --template NAME   chat template (default: the tokenizer's own, else plain few-shot text)
  --limit N         first N questions of each subject
  --save DIR        write results.json and results.md there

Examples:
  webtune eval perplexity --model ./stories260K --file valid.txt
  webtune eval perplexity --model ./base --adapter ./saves/lora --file valid.txt --json
  webtune eval mcq --task ./mmlu --split val --n-shot 5 --model ./Qwen3-0.6B --adapter ./saves/lora
  webtune eval mcq --task ./ceval --split val --model ./Qwen3-0.6B --json`;

export async function evalCommand(argv: string[]): Promise<number> {
  const [task, ...rest] = argv;
  if (task === 'mcq') return evalMcq(rest);
  if (task !== 'perplexity') {
    if (task === undefined || task.startsWith('-')) {
      throw new UsageError('name a task: webtune eval perplexity|mcq ...');
    }
    throw new UsageError(`unknown eval task "${task}"; available: perplexity, mcq`);
  }
  const { values } = parseCommandLine(rest, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    file: { type: 'string' },
    window: { type: 'string' },
    stride: { type: 'string' },
    json: { type: 'boolean' },
  });
  const modelName = required(values, 'model');
  const file = required(values, 'file');
  if (!existsSync(file)) throw new UsageError(`--file "${file}" does not exist`, 1);
  const text = await readFile(file, 'utf8');
  if (text.length === 0) throw new UsageError(`--file "${file}" is empty`, 1);
  const window = numberOption(values, 'window', { integer: true, min: 2 });
  const stride = numberOption(values, 'stride', { integer: true, min: 1 });
  const device = await openDevice();
  try {
    const { model, tokenizer } = await loadModel(device, modelName, {
      adapter: optional(values, 'adapter'),
      quiet: Boolean(values.json),
    });
    const result = await perplexity(model, tokenizer, text, { window, stride });
    if (result.tokens === 0) throw new UsageError(`--file "${file}" has a single token: nothing to score`, 1);
    const report = { perplexity: result.perplexity, nll: result.meanLoss, tokens: result.tokens };
    if (values.json) console.log(JSON.stringify(report));
    else {
      console.log(`${bold('perplexity')} ${result.perplexity.toFixed(4)}`);
      console.log(
        `mean NLL ${result.meanLoss.toFixed(4)} nats over ${result.tokens} tokens (${result.windows} windows)`,
      );
    }
    return 0;
  } finally {
    device.destroy();
  }
}

async function evalMcq(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    task: { type: 'string' },
    split: { type: 'string' },
    'n-shot': { type: 'string' },
    lang: { type: 'string' },
    template: { type: 'string' },
    limit: { type: 'string' },
    save: { type: 'string' },
    json: { type: 'boolean' },
  });
  const modelName = required(values, 'model');
  const taskDir = requireDirectory(required(values, 'task'), 'task folder');
  const split = optional(values, 'split') ?? 'test';
  if (!['test', 'val', 'dev'].includes(split))
    throw new UsageError(`--split must be test, val or dev, got "${split}"`);
  const language = optional(values, 'lang');
  if (language !== undefined && language !== 'en' && language !== 'zh') {
    throw new UsageError(`--lang must be en or zh, got "${language}"`);
  }
  const nShot = numberOption(values, 'n-shot', { integer: true, min: 0 });
  const limit = numberOption(values, 'limit', { integer: true, min: 1 });
  const { evaluateMcq, formatMcqMarkdown, mcqResultToJson } = await import('@webtune/eval');
  const { loadMcqTaskDirectory, saveMcqResult } = await import('@webtune/eval/node');
  const task = await loadMcqTaskDirectory(taskDir, { split: split as 'test' });
  const device = await openDevice();
  try {
    const { model, tokenizer } = await loadModel(device, modelName, {
      adapter: optional(values, 'adapter'),
      quiet: Boolean(values.json),
    });
    const bar = values.json ? null : new ProgressBar('scoring');
    const result = await evaluateMcq(model, tokenizer, task, {
      nShot,
      language: language as 'en' | undefined,
      template: optional(values, 'template'),
      limit,
      onProgress: (progress) => bar?.update(progress.done, progress.total, 'questions'),
    });
    bar?.done();
    const save = optional(values, 'save');
    if (save) await saveMcqResult(result, save);
    if (values.json) process.stdout.write(mcqResultToJson(result, { questions: false }));
    else console.log(formatMcqMarkdown(result));
    return 0;
  } finally {
    device.destroy();
  }
}
