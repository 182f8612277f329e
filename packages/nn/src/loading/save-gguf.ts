import { type GgufFileType, ggufModelFile, writeGguf } from '@webtune/gguf';
import { modelConfigToJson } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import type { CausalLM } from '../models/llama.js';

/** Options of `ggufChunks`. */
export interface SaveGgufOptions {
  /** Storage type of the file (default F16). */
  fileType?: GgufFileType;
  /** tokenizer.json and tokenizer_config.json as found beside the model (PretrainedModel.tokenizerFiles). */
  tokenizerFiles: Record<string, Uint8Array>;
  /** general.name. */
  name?: string;
}

/**
 * A model as a GGUF file for llama.cpp and Ollama, as a stream of chunks: architecture metadata,
 * the tokenizer (vocabulary, merges or scores, special token ids, add_bos) and chat template, and
 * the weights under llama.cpp's names, each read from the device and encoded when reached.
 */
export function ggufChunks(model: CausalLM, options: SaveGgufOptions): AsyncGenerator<Uint8Array> {
  model.assertLoaded();
  const decode = (name: string) => {
    const bytes = options.tokenizerFiles[name];
    return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>) : undefined;
  };
  const tokenizerJson = decode('tokenizer.json');
  if (tokenizerJson === undefined) {
    throw new ModelError(
      'GGUF export needs the tokenizer (tokenizer.json): llama.cpp reads it from the file',
    );
  }
  const file = ggufModelFile({
    config: modelConfigToJson(model.config),
    tokenizer: { tokenizerJson, tokenizerConfig: decode('tokenizer_config.json') ?? {} },
    fileType: options.fileType ?? 'F16',
    name: options.name,
    tensors: [...model.namedParameters()].map(([name, tensor]) => ({
      name,
      shape: tensor.shape,
      values: async () => (await tensor.toArray()) as Float32Array,
    })),
  });
  return writeGguf(file.metadata, file.tensors);
}
