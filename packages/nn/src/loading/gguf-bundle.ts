import { type GgufFileType, ggufLoraFile, ollamaModelfile, writeGguf } from '@webtune/gguf';
import { readSafetensorsBytes, toFloat32 } from '@webtune/safetensors';
import type { Tokenizer } from '@webtune/tokenizers';
import { modelConfigToJson } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import type { CausalLM } from '../models/llama.js';
import { ggufChunks } from './save-gguf.js';

/** GGUF types a merged model can be exported as (`webtune export --gguf`, the web app's Export tab). */
export const GGUF_EXPORT_TYPES = ['F16', 'BF16', 'F32', 'Q8_0', 'Q4_0', 'Q4_K_M'] as const;

/** The stop strings of a model for Ollama: the EOS token(s) and the end-of-turn markers it has. */
export function ollamaStopTokens(model: CausalLM, tokenizer: Tokenizer): string[] {
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

/** A PEFT adapter (adapter_config.json and adapter_model.safetensors, as bytes) as a GGUF LoRA adapter. */
export function ggufAdapterChunks(
  adapterConfigJson: Uint8Array | string,
  adapterWeights: Uint8Array,
  model: CausalLM,
  name: string,
): AsyncGenerator<Uint8Array> {
  const text =
    typeof adapterConfigJson === 'string' ? adapterConfigJson : new TextDecoder().decode(adapterConfigJson);
  const weights = readSafetensorsBytes(adapterWeights);
  let file: ReturnType<typeof ggufLoraFile>;
  try {
    file = ggufLoraFile(
      JSON.parse(text) as Record<string, unknown>,
      modelConfigToJson(model.config),
      weights.tensors.map((entry) => ({
        name: entry.name,
        shape: entry.shape,
        values: () => toFloat32(entry),
      })),
      `${name} (LoRA)`,
    );
  } catch (error) {
    throw new ModelError(`cannot write ${name} as a GGUF LoRA adapter: ${(error as Error).message}`);
  }
  return writeGguf(file.metadata, file.tensors);
}

/** One file of a GGUF export: its name and its bytes, produced in chunks when reached. */
export interface GgufBundleFile {
  name: string;
  chunks: () => AsyncGenerator<Uint8Array>;
}

export interface GgufBundleOptions {
  /** The model to write (merged, or the base when the adapter is kept separate). */
  model: CausalLM;
  tokenizer: Tokenizer;
  tokenizerFiles: Record<string, Uint8Array>;
  fileType: GgufFileType;
  /** Base name of the files and of the Ollama model. */
  name: string;
  /** A PEFT adapter to write as a GGUF LoRA adapter beside the base instead of merging. */
  adapter?: { config: Uint8Array | string; weights: Uint8Array };
  /** The system prompt for the Modelfile. */
  system?: string;
}

/** What a GGUF export writes: the files (model, adapter, Modelfile) and the two Ollama commands. */
export interface GgufBundle {
  files: GgufBundleFile[];
  /** The Ollama model name, and the commands with `{folder}` standing for where the files go. */
  ollamaName: string;
  commands: (folder: string) => string[];
}

/**
 * The files of a GGUF export, shared by `webtune export --gguf` (written to a folder) and the web
 * app (collected in memory): `<name>-<type>.gguf`, `<name>-lora.gguf` when an adapter is kept
 * separate, and an Ollama `Modelfile` (FROM, ADAPTER, PARAMETER stop, SYSTEM).
 */
export function ggufBundle(options: GgufBundleOptions): GgufBundle {
  const modelFile = `${options.name}-${options.fileType.toLowerCase()}.gguf`;
  const adapterFile = options.adapter ? `${options.name}-lora.gguf` : undefined;
  const files: GgufBundleFile[] = [
    {
      name: modelFile,
      chunks: () =>
        ggufChunks(options.model, {
          fileType: options.fileType,
          tokenizerFiles: options.tokenizerFiles,
          name: options.name,
        }),
    },
  ];
  const adapter = options.adapter;
  if (adapter && adapterFile) {
    files.push({
      name: adapterFile,
      chunks: () => ggufAdapterChunks(adapter.config, adapter.weights, options.model, options.name),
    });
  }
  const modelfile = ollamaModelfile({
    from: `./${modelFile}`,
    adapter: adapterFile ? `./${adapterFile}` : undefined,
    stopTokens: ollamaStopTokens(options.model, options.tokenizer),
    system: options.system,
  });
  files.push({
    name: 'Modelfile',
    chunks: async function* () {
      yield new TextEncoder().encode(modelfile);
    },
  });
  const ollamaName = options.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  return {
    files,
    ollamaName,
    commands: (folder) => [
      `ollama create ${ollamaName} -f ${folder.replace(/\/+$/, '')}/Modelfile`,
      `ollama run ${ollamaName}`,
    ],
  };
}
