/**
 * `webtune export --gguf TYPE`: the merged model (or the base plus a GGUF LoRA adapter) as GGUF
 * files for llama.cpp and Ollama, with an Ollama Modelfile beside them. The files themselves come
 * from @webtune/nn's `ggufBundle`, which the web app's Export tab uses too.
 */
import { open, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { GgufFileType } from '@webtune/gguf';
import {
  type CausalLM,
  GGUF_EXPORT_TYPES,
  ggufAdapterChunks,
  ggufBundle,
  ollamaStopTokens,
} from '@webtune/nn';
import type { Tokenizer } from '@webtune/tokenizers';
import { UsageError } from '../ui.js';

/** GGUF types `--gguf` accepts. */
export const GGUF_TYPES = GGUF_EXPORT_TYPES;

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
  return ollamaStopTokens(model, tokenizer);
}

async function readAdapterFolder(adapterDirectory: string) {
  return {
    config: await readFile(join(adapterDirectory, 'adapter_config.json')),
    weights: new Uint8Array(await readFile(join(adapterDirectory, 'adapter_model.safetensors'))),
  };
}

async function writeChunks(path: string, chunks: AsyncGenerator<Uint8Array>): Promise<number> {
  const handle = await open(path, 'w');
  let size = 0;
  try {
    for await (const chunk of chunks) {
      await handle.write(chunk);
      size += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return size;
}

/** Writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) as a GGUF LoRA adapter. */
export async function writeGgufAdapter(
  adapterDirectory: string,
  model: CausalLM,
  path: string,
): Promise<number> {
  const adapter = await readAdapterFolder(adapterDirectory);
  try {
    return await writeChunks(
      path,
      ggufAdapterChunks(adapter.config, adapter.weights, model, basename(adapterDirectory)),
    );
  } catch (error) {
    throw new UsageError(
      (error as Error).message.replace(
        /^cannot write [^:]*:/,
        `cannot write ${adapterDirectory} as a GGUF adapter:`,
      ),
    );
  }
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
  const bundle = ggufBundle({
    model: options.model,
    tokenizer: options.tokenizer,
    tokenizerFiles: options.tokenizerFiles,
    fileType: options.fileType,
    name: options.name,
    adapter: options.adapterDirectory ? await readAdapterFolder(options.adapterDirectory) : undefined,
    system: options.system,
  });
  for (const file of bundle.files) {
    try {
      await writeChunks(join(options.directory, file.name), file.chunks());
    } catch (error) {
      if (options.adapterDirectory && file.name.endsWith('-lora.gguf')) {
        throw new UsageError(
          (error as Error).message.replace(
            /^cannot write [^:]*:/,
            `cannot write ${options.adapterDirectory} as a GGUF adapter:`,
          ),
        );
      }
      throw error;
    }
  }
  return { files: bundle.files.map((file) => file.name), commands: bundle.commands(options.directory) };
}
