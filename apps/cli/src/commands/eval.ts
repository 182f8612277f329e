import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { perplexity } from '@webtune/nn';
import type { Device } from '@webtune/tensors';
import {
  baseFormatFrom,
  numberOption,
  optional,
  parseCommandLine,
  QUANTIZATION_OPTIONS,
  required,
  type Values,
} from '../args.js';
import { COMPARISON_HELP } from '../eval/comparison.js';
import { MCQ_OPTIONS, mcqChoicesFrom } from '../eval/mcq-options.js';
import { loadModel, openDevice, requireDirectory } from '../model-loading.js';
import { bold, ProgressBar, UsageError } from '../ui.js';
import { argvFromConfig } from './config-argv.js';

export const evalHelp = `webtune eval perplexity|mcq|predict|ab|judge|forgetting --model DIR ... [--json]

Evaluates a model (and a PEFT adapter on it). ab, judge and forgetting compare the base model
(adapter off) with the tuned one (adapter on) using one copy of the weights.

perplexity --file TEXT
  Perplexity of a text file, with @webtune/nn's convention: the text is tokenized whole (BOS added
  where the tokenizer adds one), every token after the first is scored once; texts longer than the
  window go through overlapping windows. --json prints {"perplexity", "nll", "tokens"}.
  --file PATH             the text to score
  --window N              most tokens per forward pass (default min(max_position_embeddings, 1024))
  --stride N              tokens between window starts (default window / 2)

mcq --task DIR
  Multiple-choice benchmarks in LLaMA-Factory's layout (MMLU, C-Eval, CMMLU: dev/ val/ test/ CSVs
  per subject and mapping.json), scored from the logits of the A/B/C/D tokens.
  --task DIR              the task folder
  --split S               test (default) or val (C-Eval's test split has no answers)
  --n-shot N              solved dev examples before each question (default 5)
  --lang L                en or zh header (default: the task's)
  --template NAME         chat template (default: the tokenizer's own, else plain few-shot text)
  --limit N               first N questions of each subject
  --save DIR              write results.json and results.md there

predict --dataset NAME|FILE --out FILE.jsonl
  Answers every row of a test set (SFT rows: the last answer is the reference) greedily through the
  chat template, writes {"prompt", "predict", "label"} JSON Lines and prints BLEU-4 and
  ROUGE-1/2/L (means x 100; Chinese scored by character). --json prints the scores as JSON.
  --dataset NAME|FILE     a file, or a name in --dataset-dir/dataset_info.json (commas join several)
  --dataset-dir DIR       folder of dataset_info.json (default ./data)
  --formatting F          alpaca, sharegpt, openai or v1 for a file (default: from its first row)
  --template NAME         chat template (default: the tokenizer's own, else "default")
  --max-samples N         first N rows
  --max-new-tokens N      longest answer (default 128)
  --batch-size N          prompts generated together (default 8)
  --segmentation S        characters (default: CJK by character, other scripts by word) or words
  --out FILE              the predictions file to write

ab --adapter DIR --prompts FILE
  A blind A/B test for a person: base and tuned answer every prompt; each pair is shown with the
  answers on shuffled sides as [A] and [B], in a shuffled order. Vote one line at a time on
  standard input (a terminal, or a pipe): a, b or t (tie); s skips, q (or end of input) ends the
  session. The sides are revealed at the end: base wins, tuned wins, ties and the win rate.
  --seed N                the shuffle (default: from the clock)
  --save FILE             write the session (sides, votes, answers) as JSON

judge --adapter DIR --prompts FILE --judge-url URL --judge-model NAME
  A model judge over any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, webtune
  serve). Each pair is judged twice, base's answer first and tuned's answer first, to cancel
  position bias; orders that disagree count as a tie, replies without [[A]]/[[B]]/[[C]] are left
  out. Prints the tuned model's win rate (ties count half) with a confidence interval.
  --judge-url URL         base URL, e.g. https://api.openai.com/v1 (a bare host gets /v1)
  --judge-model NAME      model name sent to the endpoint
  --judge-key KEY         API key (or set WEBTUNE_JUDGE_KEY)
  --judge-max-tokens N    longest judge reply (default 1024)
  --concurrency N         pairs judged at once (default 4)
  --confidence C          of the interval (default 0.95)
  --save FILE             write the report with every reply as JSON

Options of ab and judge:
${COMPARISON_HELP}

forgetting --adapter DIR --general-task DIR (--domain-task DIR | --domain-file TEXT)
  Did the model get smarter, and did it forget anything? Base and tuned on general benchmarks
  (accuracy) and the domain set (accuracy, or perplexity of a text file): the changes side by side,
  a verdict, and when general skill fell past the threshold, the advice to mix ~10% general data
  with the training config lines that do it. Options may repeat (several tasks or files).
  --general-task DIR      benchmark folder the model should keep (MMLU, C-Eval, CMMLU layout)
  --domain-task DIR       multiple-choice folder of the tuned domain
  --domain-file TEXT      domain text (e.g. held-out answers) scored by perplexity
  --split, --n-shot, --lang, --template, --limit   as for mcq
  --forgetting-threshold P  general drop (points) that counts as forgetting (default 2)
  --gain-threshold P      domain change that counts as a gain (default 1)
  --domain-dataset NAME   your dataset's name in the advised config (default my_data)
  --general-dataset NAME  general dataset to mix in (default alpaca_en_demo, zh: alpaca_zh_demo)
  --general-share S       share of general data in the mix (default 0.1)

Options of every task:
  --model DIR             Hugging Face model folder, hub id or .gguf file
  --adapter DIR           PEFT adapter folder (required by ab, judge, forgetting)
  --json                  machine-readable output on stdout (not ab)
  --quantization-bit N    perplexity, mcq: 8 or 4 holds the base in Q8_0 / Q4_0 blocks

Exit codes: 0 done, 1 a file, folder, dataset, model or endpoint failed, 2 bad command line.

Examples:
  webtune eval perplexity --model ./stories260K --file valid.txt
  webtune eval perplexity --model ./base --adapter ./saves/lora --file valid.txt --json
  webtune eval mcq --task ./mmlu --split val --n-shot 5 --model ./Qwen3-0.6B --adapter ./saves/lora
  webtune eval predict --model ./Qwen3-0.6B --adapter ./saves/lora --dataset alpaca_en_demo \\
    --dataset-dir data --max-samples 100 --out saves/lora/generated_predictions.jsonl
  webtune eval ab --model ./Qwen3-0.6B --adapter ./saves/lora --prompts prompts.txt \\
    --export-dataset data/ab
  printf 'a\\nb\\nt\\n' | webtune eval ab --model ./base --adapter ./lora --prompts prompts.txt --seed 1
  webtune eval judge --model ./Qwen3-0.6B --adapter ./saves/lora --prompts prompts.jsonl \\
    --judge-url https://api.openai.com/v1 --judge-model gpt-4o-mini --judge-key $OPENAI_API_KEY
  webtune eval judge --model ./base --adapter ./lora --prompts prompts.txt \\
    --judge-url http://127.0.0.1:8000/v1 --judge-model judge --json --export-dataset data/judged
  webtune eval forgetting --model ./Qwen3-0.6B --adapter ./saves/lora --general-task ./mmlu \\
    --split val --domain-file data/held_out_answers.txt`;

const TASKS = ['perplexity', 'mcq', 'predict', 'ab', 'judge', 'forgetting'];

export async function evalCommand(commandLine: string[]): Promise<number> {
  const argv = argvFromConfig('eval', commandLine);
  const [task, ...rest] = argv;
  if (task === 'mcq') return evalMcq(rest);
  if (task === 'predict') return (await import('../eval/predict.js')).predictCommand(rest);
  if (task === 'ab') return (await import('../eval/ab.js')).abCommand(rest);
  if (task === 'judge') return (await import('../eval/judge.js')).judgeCommand(rest);
  if (task === 'forgetting') return (await import('../eval/forgetting.js')).forgettingCommand(rest);
  if (task !== 'perplexity') {
    if (task === undefined || task.startsWith('-')) {
      throw new UsageError(`name a task: webtune eval ${TASKS.join('|')} ...`);
    }
    throw new UsageError(`unknown eval task "${task}"; available: ${TASKS.join(', ')}`);
  }
  const { values } = parseCommandLine(rest, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    file: { type: 'string' },
    window: { type: 'string' },
    stride: { type: 'string' },
    json: { type: 'boolean' },
    ...QUANTIZATION_OPTIONS,
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
    const { model, tokenizer } = await loadEvalModel(device, modelName, values);
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

/** The model an eval task scores: with --adapter and --quantization-bit, and no progress bar under --json. */
function loadEvalModel(device: Device, modelName: string, values: Values) {
  return loadModel(device, modelName, {
    adapter: optional(values, 'adapter'),
    quiet: Boolean(values.json),
    baseFormat: baseFormatFrom(values),
  });
}

async function evalMcq(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    task: { type: 'string' },
    ...MCQ_OPTIONS,
    save: { type: 'string' },
    json: { type: 'boolean' },
    ...QUANTIZATION_OPTIONS,
  });
  const modelName = required(values, 'model');
  const taskDir = requireDirectory(required(values, 'task'), 'task folder');
  const { split, ...choices } = mcqChoicesFrom(values);
  const { evaluateMcq, formatMcqMarkdown, mcqResultToJson } = await import('@webtune/eval');
  const { loadMcqTaskDirectory, saveMcqResult } = await import('@webtune/eval/node');
  const task = await loadMcqTaskDirectory(taskDir, { split });
  const device = await openDevice();
  try {
    const { model, tokenizer } = await loadEvalModel(device, modelName, values);
    const bar = values.json ? null : new ProgressBar('scoring');
    const result = await evaluateMcq(model, tokenizer, task, {
      ...choices,
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
