/**
 * `webtune export --gguf TYPE`: the merged model (or the base plus a GGUF LoRA adapter) as GGUF
 * files for llama.cpp and Ollama, with an Ollama Modelfile beside them.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type GgufFileType, ggufLoraFile, ollamaModelfile, writeGguf } from '@webtune/gguf';
import { type CausalLM, modelConfigToJson } from '@webtune/nn';
import { saveGgufFile } from '@webtune/nn/node';
import { readSafetensorsBytes, toFloat32 } from '@webtune/safetensors';
import type { Tokenizer } from '@webtune/tokenizers';
import { UsageError } from '../ui.js';

/** GGUF types `--gguf` accepts. */
export const GGUF_TYPES = ['F16', 'BF16', 'F32', 'Q8_0', 'Q4_0', 'Q4_K_M'] as const;

/** LLaMA-Factory's `export_quantization_bit` as a GGUF type: 8 -> Q8_0, 4 -> Q4_K_M. */
export function ggufTypeOfBits(bits: unknown): GgufFileType {
  if (bits === 8) return 'Q8_0';
  if (bits === 4) return 'Q4_K_M';
  throw new UsageError(`export_quantization_bit must be 4 or 8 (GGUF Q4_K_M or Q8_0), got ${String(bits)}`);
}

/** Checks a `--gguf` value. */
export function parseGgufType(text: string): GgufFileType {
  const type = text.toUpperCase() as GgufFileType;
  if (!(GGUF_TYPES as readonly string[]).includes(type)) {
    throw new UsageError(`--gguf must be one of ${GGUF_TYPES.join(', ')}, got "${text}"`);
  }
  return type;
}

/** The stop strings of a model for Ollama: the EOS token(s) and common end-of-turn markers it has. */
export function stopTokens(model: CausalLM, tokenizer: Tokenizer): string[] {
  const ids = new Set([
    ...model.config.eosTokenIds,
    ...(tokenizer.eosTokenId === undefined ? [] : [tokenizer.eosTokenId]),
  ]);
  const stops = [...ids].flatMap((id) => tokenizer.idToToken(id) ?? []);
  for (const marker of ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>']) {
    if (tokenizer.tokenToId(marker) !== undefined) stops.push(marker);
  }
  return [...new Set(stops)];
}

/** Writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) as a GGUF LoRA adapter. */
export async function writeGgufAdapter(
  adapterDirectory: string,
  model: CausalLM,
  path: string,
): Promise<number> {
  const adapterConfig = JSON.parse(await readFile(join(adapterDirectory, 'adapter_config.json'), 'utf8'));
  const weights = readSafetensorsBytes(
    new Uint8Array(await readFile(join(adapterDirectory, 'adapter_model.safetensors'))),
  );
  let file: ReturnType<typeof ggufLoraFile>;
  try {
    file = ggufLoraFile(
      adapterConfig,
      modelConfigToJson(model.config),
      weights.tensors.map((entry) => ({
        name: entry.name,
        shape: entry.shape,
        values: () => toFloat32(entry),
      })),
      `${basename(adapterDirectory)} (LoRA)`,
    );
  } catch (error) {
    throw new UsageError(`cannot write ${adapterDirectory} as a GGUF adapter: ${(error as Error).message}`);
  }
  const handle = await open(path, 'w');
  let size = 0;
  try {
    for await (const chunk of writeGguf(file.metadata, file.tensors)) {
      await handle.write(chunk);
      size += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return size;
}

/** What `exportGguf` writes. */
export interface GgufExportOptions {
  /** The model to write (merged, or the base when `adapterDirectory` is kept separate). */
  model: CausalLM;
  tokenizer: Tokenizer;
  tokenizerFiles: Record<string, Uint8Array>;
  fileType: GgufFileType;
  /** Folder to write into (exists). */
  directory: string;
  /** Base name of the files and of the Ollama model. */
  name: string;
  /** A PEFT adapter folder to write as a GGUF LoRA adapter instead of merging. */
  adapterDirectory?: string;
  /** The system prompt for the Modelfile. */
  system?: string;
}

/** Writes the GGUF file(s) and the Modelfile; returns the file names and the commands to print. */
export async function exportGguf(
  options: GgufExportOptions,
): Promise<{ files: string[]; commands: string[] }> {
  const modelFile = `${options.name}-${options.fileType.toLowerCase()}.gguf`;
  await saveGgufFile(options.model, join(options.directory, modelFile), {
    fileType: options.fileType,
    tokenizerFiles: options.tokenizerFiles,
    name: options.name,
  });
  const files = [modelFile];
  let adapterFile: string | undefined;
  if (options.adapterDirectory) {
    adapterFile = `${options.name}-lora.gguf`;
    await writeGgufAdapter(options.adapterDirectory, options.model, join(options.directory, adapterFile));
    files.push(adapterFile);
  }
  const modelfile = ollamaModelfile({
    from: `./${modelFile}`,
    adapter: adapterFile ? `./${adapterFile}` : undefined,
    stopTokens: stopTokens(options.model, options.tokenizer),
    system: options.system,
  });
  await writeFile(join(options.directory, 'Modelfile'), modelfile);
  files.push('Modelfile');
  const ollamaName = options.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  return {
    files,
    commands: [
      `ollama create ${ollamaName} -f ${join(options.directory, 'Modelfile')}`,
      `ollama run ${ollamaName}`,
    ],
  };
}
