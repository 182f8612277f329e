import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CausalLM, createModelConfig, generateWithTimings, initializeModel } from '@webtune/nn';
import { numberOption, optional, parseCommandLine } from '../args.js';
import { loadModel, openDevice } from '../model-loading.js';
import { bold, table, UsageError } from '../ui.js';

export const benchHelp = `webtune bench kernels|train|generate [--json] [options]

  kernels    matmul, elementwise, reductions, attention... (the @webtune/tensors kernel benchmark)
             options: --quick, --only REGEXP
  train      one training step: the @webtune/train LoRA SFT benchmark when present, else the
             @webtune/tensors decoder-layer forward + backward, beside PyTorch on the CPU when
             /usr/bin/python3 has torch
  generate   prefill and decode tokens/s (greedy, batch 1, KV cache) of --model, or of a random
             stories15M-shape model; options: --model DIR, --prompt-tokens N, --new-tokens N,
             --repeats N

--json prints machine-readable rows only. Timings are medians or best-of on a shared machine:
compare rows of one run.

Examples:
  webtune bench kernels --quick
  webtune bench generate --model ./stories260K --new-tokens 64 --json
  webtune bench train`;

const require = createRequire(import.meta.url);

/**
 * A benchmark script of a workspace package, through its `./bench/*` export (bench/ is not published,
 * so outside a clone of the repository the script is missing).
 */
function packageScript(packageName: string, script: string): string | null {
  let path: string;
  try {
    path = require.resolve(`${packageName}/bench/${script}`);
  } catch {
    return null;
  }
  return existsSync(path) ? path : null;
}

function runScript(path: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', path, ...args], { stdio: 'inherit' });
    const forward = () => child.kill('SIGINT');
    process.on('SIGINT', forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      resolve(signal ? 130 : (code ?? 1));
    });
  });
}

export async function benchCommand(argv: string[]): Promise<number> {
  const [suite, ...rest] = argv;
  if (suite === 'kernels') return benchKernels(rest);
  if (suite === 'train') return benchTrain(rest);
  if (suite === 'generate') return benchGenerate(rest);
  if (suite === undefined || suite.startsWith('-'))
    throw new UsageError('name a benchmark: webtune bench kernels|train|generate');
  throw new UsageError(`unknown benchmark "${suite}"; benchmarks: kernels, train, generate`);
}

async function benchKernels(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    json: { type: 'boolean' },
    quick: { type: 'boolean' },
    only: { type: 'string' },
  });
  const script = packageScript('@webtune/tensors', 'kernels.mjs');
  if (!script)
    throw new UsageError(
      'the kernel benchmark ships with the webtune repository (packages/tensors/bench); run it from a clone',
      1,
    );
  const args = [
    values.json ? '--json' : '',
    values.quick ? '--quick' : '',
    values.only ? `--only=${values.only}` : '',
  ].filter(Boolean);
  return runScript(script, args);
}

async function benchTrain(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, { json: { type: 'boolean' }, steps: { type: 'string' } });
  const steps = numberOption(values, 'steps', { integer: true, min: 1 });
  const trainer = packageScript('@webtune/train', 'lora-sft.mjs');
  const layer = packageScript('@webtune/tensors', 'train-step.mjs');
  const script = trainer ?? layer;
  if (!script)
    throw new UsageError(
      'the training benchmarks ship with the webtune repository (packages/*/bench); run it from a clone',
      1,
    );
  const args = [steps ? `--steps=${steps}` : ''].filter(Boolean);
  if (!values.json) return runScript(script, args);
  // --json: keep only the JSON rows the script prints.
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, WEBTUNE_BENCH_JSON: '1' },
    });
    let buffered = '';
    let rows = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line.startsWith('{')) {
          console.log(line);
          rows++;
        }
        newline = buffered.indexOf('\n');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal) return resolve(130);
      if (code === 0 && rows === 0) {
        console.error(`webtune bench: ${script} printed no JSON rows; run without --json for its table`);
        return resolve(1);
      }
      resolve(code ?? 1);
    });
  });
}

async function benchGenerate(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(argv, {
    json: { type: 'boolean' },
    model: { type: 'string' },
    'prompt-tokens': { type: 'string' },
    'new-tokens': { type: 'string' },
    repeats: { type: 'string' },
  });
  const promptTokens = numberOption(values, 'prompt-tokens', { integer: true, min: 1 }) ?? 64;
  const newTokens = numberOption(values, 'new-tokens', { integer: true, min: 1 }) ?? 64;
  const repeats = numberOption(values, 'repeats', { integer: true, min: 1 }) ?? 2;
  const modelName = optional(values, 'model');
  const device = await openDevice();
  try {
    let model: CausalLM;
    let name: string;
    if (modelName) {
      model = (await loadModel(device, modelName, { quiet: Boolean(values.json) })).model;
      name = modelName;
    } else {
      // stories15M's shape with random weights: the speed does not depend on the values.
      const config = createModelConfig({
        hiddenSize: 288,
        intermediateSize: 768,
        numHiddenLayers: 6,
        numAttentionHeads: 6,
        vocabSize: 32000,
        maxPositionEmbeddings: 1024,
      });
      model = initializeModel(new CausalLM(device, config), { seed: 0 });
      name = 'random stories15M shape';
    }
    if (promptTokens + newTokens > model.config.maxPositionEmbeddings) {
      throw new UsageError(
        `--prompt-tokens + --new-tokens exceed the model's context of ${model.config.maxPositionEmbeddings}`,
      );
    }
    const vocab = model.config.vocabSize;
    const ids = Array.from({ length: promptTokens }, (_, i) =>
      i === 0 ? 1 : 3 + ((i * 7919) % (vocab - 3)),
    );
    // Warm-up: compiles every pipeline and fills the buffer pool.
    await generateWithTimings(model, null, [ids], { maxNewTokens: 4, stopTokens: [] });
    let prefill = 0;
    let decode = 0;
    for (let r = 0; r < repeats; r++) {
      const { timings } = await generateWithTimings(model, null, [ids], {
        maxNewTokens: newTokens,
        stopTokens: [],
      });
      prefill = Math.max(prefill, (timings.promptTokens / timings.prefillMs) * 1000);
      decode = Math.max(decode, (timings.decodeSteps / timings.decodeMs) * 1000);
    }
    const row = {
      name: 'generate',
      model: name,
      parameters: model.parameterCount(),
      adapter: `${device.info.vendor} ${device.info.architecture}`.trim(),
      promptTokens,
      newTokens,
      prefillTokensPerSecond: Number(prefill.toFixed(1)),
      decodeTokensPerSecond: Number(decode.toFixed(1)),
    };
    if (values.json) console.log(JSON.stringify(row));
    else {
      console.log(
        bold(`generation: ${name} (${(row.parameters / 1e6).toFixed(2)}M parameters) on ${row.adapter}`),
      );
      console.log(
        table([
          ['prompt tokens', 'new tokens', 'prefill tok/s', 'decode tok/s'],
          [String(promptTokens), String(newTokens), prefill.toFixed(1), decode.toFixed(1)],
        ]),
      );
    }
    return 0;
  } finally {
    device.destroy();
  }
}
