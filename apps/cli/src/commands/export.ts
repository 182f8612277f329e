import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { saveModelDirectory } from '@webtune/nn/node';
import { optional, parseCommandLine, type Values } from '../args.js';
import { loadModel, openDevice } from '../model-loading.js';
import { isConfigPath, parseOverrides, readConfigFile } from '../train/config.js';
import { UsageError } from '../ui.js';
import { exportGguf, ggufTypeOfBits, parseGgufType } from './export-gguf.js';

export const exportHelp = `webtune export --model DIR|FILE.gguf --adapter DIR --out DIR [options]
webtune export CONFIG.yaml   (LLaMA-Factory keys: model_name_or_path, adapter_name_or_path,
                              export_dir, export_size, export_quantization_bit, default_system)

Merges a LoRA adapter into the base weights and writes a Hugging Face model folder: config.json,
generation_config.json, safetensors (sharded above --max-shard-size, with
model.safetensors.index.json) and the tokenizer files. Transformers loads the result directly.
Without --adapter the model is rewritten as is (to change dtype or shard size).

With --gguf TYPE it writes a GGUF file for llama.cpp and Ollama instead (tokenizer, special
tokens and chat template inside), an Ollama Modelfile beside it, and prints the commands to run
it. Q4_K_M stores most matrices in Q4_K and the output head plus attn_v/ffn_down of some layers
in Q6_K, as llama.cpp does; rows that are not whole blocks fall back (Q4_K -> Q5_0 -> F16). In a
config file, export_quantization_bit 8 or 4 means --gguf Q8_0 or Q4_K_M.

Options:
  --model DIR            base model folder, hub id or .gguf file
  --adapter DIR          PEFT LoRA adapter folder to merge
  --out DIR              where to write; refused if it exists and is not empty, unless --force
  --force                replace what is in --out
  --dtype D              F32 (default), F16 or BF16 on disk
  --max-shard-size SIZE  largest shard, e.g. 2GB, 500MB (default 5GB)
  --gguf TYPE            write GGUF: F16, BF16, F32, Q8_0, Q4_0 or Q4_K_M
  --gguf-adapter         with --gguf and --adapter: write the base model and a GGUF LoRA adapter
                         (llama.cpp --lora, Ollama ADAPTER) instead of merging
  --system TEXT          system prompt for the Modelfile

Examples:
  webtune export --model ./Qwen3-0.6B --adapter ./saves/lora --out ./merged
  webtune export --model ./base --adapter ./saves/lora --out ./merged --dtype BF16 --max-shard-size 1GB --force
  webtune export --model ./Qwen3-0.6B --adapter ./saves/lora --out ./gguf --gguf Q4_K_M
  webtune export --model ./model.gguf --adapter ./saves/lora --out ./gguf --gguf Q8_0 --gguf-adapter`;

const DTYPES = ['F32', 'F16', 'BF16'] as const;

/** `5GB`, `500MB`, `1.5GiB`, `1000000` -> bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`--max-shard-size must look like 2GB or 500MB, got "${text}"`);
  const units: Record<string, number> = {
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    KIB: 2 ** 10,
    MIB: 2 ** 20,
    GIB: 2 ** 30,
  };
  const bytes = Math.floor(Number(match[1]) * units[(match[2] ?? 'B').toUpperCase()]);
  if (bytes < 1) throw new UsageError(`--max-shard-size must be positive, got "${text}"`);
  return bytes;
}

/** The export options, from flags or from a LLaMA-Factory config file. */
interface ExportPlan {
  modelName: string;
  out: string;
  adapter: string | undefined;
  dtype: (typeof DTYPES)[number];
  maxShardBytes: number | undefined;
  gguf: ReturnType<typeof parseGgufType> | undefined;
  ggufAdapter: boolean;
  system: string | undefined;
  force: boolean;
}

/** A config file and `key=value` / `--key value` overrides after it, as llamafactory-cli export takes them. */
function planFromConfig(path: string, overrides: string[] = []): ExportPlan {
  const config = { ...readConfigFile(path), ...parseOverrides(overrides) };
  const text = (key: string) => (typeof config[key] === 'string' ? (config[key] as string) : undefined);
  const modelName = text('model_name_or_path');
  const out = text('export_dir');
  if (!modelName) throw new UsageError(`${path}: model_name_or_path is required`);
  if (!out) throw new UsageError(`${path}: export_dir is required`);
  const bits = config.export_quantization_bit;
  const size = config.export_size;
  if (size !== undefined && size !== null && !(typeof size === 'number' && size > 0)) {
    throw new UsageError(`${path}: export_size must be a positive number of GB, got ${String(size)}`);
  }
  return {
    modelName,
    out: resolve(out),
    adapter: text('adapter_name_or_path'),
    dtype: 'F32',
    maxShardBytes: typeof size === 'number' ? size * 1e9 : undefined,
    gguf: bits === undefined || bits === null ? undefined : ggufTypeOfBits(bits),
    ggufAdapter: false,
    system: text('default_system'),
    force: config.export_overwrite === true,
  };
}

function planFromFlags(values: Values): ExportPlan {
  const modelName = optional(values, 'model');
  const outText = optional(values, 'out');
  if (!modelName) throw new UsageError('--model is required');
  if (!outText) throw new UsageError('--out is required');
  const dtype = (optional(values, 'dtype') ?? 'F32').toUpperCase() as (typeof DTYPES)[number];
  if (!DTYPES.includes(dtype))
    throw new UsageError(`--dtype must be F32, F16 or BF16, got "${values.dtype}"`);
  const shardText = optional(values, 'max-shard-size');
  const ggufText = optional(values, 'gguf');
  if (values['gguf-adapter'] && (!ggufText || !values.adapter)) {
    throw new UsageError('--gguf-adapter needs --gguf TYPE and --adapter DIR');
  }
  return {
    modelName,
    out: resolve(outText),
    adapter: optional(values, 'adapter'),
    dtype,
    maxShardBytes: shardText ? parseSize(shardText) : undefined,
    gguf: ggufText ? parseGgufType(ggufText) : undefined,
    ggufAdapter: values['gguf-adapter'] === true,
    system: optional(values, 'system'),
    force: values.force === true,
  };
}

export async function exportCommand(argv: string[]): Promise<number> {
  if (isConfigPath(argv[0])) return exportWith(planFromConfig(argv[0], argv.slice(1)));
  const { values, positionals } = parseCommandLine(
    argv,
    {
      model: { type: 'string' },
      adapter: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      dtype: { type: 'string' },
      'max-shard-size': { type: 'string' },
      gguf: { type: 'string' },
      'gguf-adapter': { type: 'boolean' },
      system: { type: 'string' },
    },
    { min: 0, max: 1, what: 'config file' },
  );
  return exportWith(positionals.length === 1 ? planFromConfig(positionals[0]) : planFromFlags(values));
}

async function exportWith(plan: ExportPlan): Promise<number> {
  const { modelName, out, adapter } = plan;
  if (out === resolve(modelName) || (adapter && out === resolve(adapter))) {
    throw new UsageError('--out must differ from --model and --adapter');
  }
  if (existsSync(out) && readdirSync(out).length > 0 && !plan.force) {
    throw new UsageError(`--out "${out}" exists and is not empty; add --force to replace it`);
  }

  const device = await openDevice();
  try {
    // With --gguf-adapter the adapter is written on its own, so the base stays unmerged.
    const loaded = await loadModel(device, modelName, {
      adapter: plan.ggufAdapter ? undefined : adapter,
      keepQuantized: false,
    });
    const model = loaded.peft ? loaded.peft.mergeAndUnload() : loaded.model;
    // Write beside the target and swap at the end: a failed export leaves --out as it was.
    const partial = `${out}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    let files: string[];
    let commands: string[] = [];
    try {
      if (plan.gguf) {
        await mkdir(partial, { recursive: true });
        const name = basename(modelName.replace(/[\\/]+$/, '')).replace(/\.gguf$/i, '') || 'model';
        ({ files, commands } = await exportGguf({
          model,
          tokenizer: loaded.tokenizer,
          tokenizerFiles: loaded.tokenizerFiles,
          fileType: plan.gguf,
          directory: partial,
          name,
          adapterDirectory: plan.ggufAdapter ? adapter : undefined,
          system: plan.system,
        }));
      } else {
        files = await saveModelDirectory(model, partial, {
          dtype: plan.dtype,
          maxShardBytes: plan.maxShardBytes,
          generationConfig: loaded.generationConfig,
          extraFiles: loaded.tokenizerFiles,
        });
      }
      await rm(out, { recursive: true, force: true });
      await rename(partial, out);
    } catch (error) {
      await rm(partial, { recursive: true, force: true });
      throw error;
    }
    console.log(`wrote ${out}: ${files.sort().join(', ')}`);
    if (commands.length > 0) {
      const fixed = commands.map((command) => command.replace(partial, out));
      console.log(`run it with Ollama:\n  ${fixed.join('\n  ')}`);
    }
    return 0;
  } finally {
    device.destroy();
  }
}
