import { type GgufSource, openGgufModel, readGguf } from '@webtune/gguf';
import type { Device } from '@webtune/tensors';
import { Tokenizer } from '@webtune/tokenizers';
import { parseModelConfig } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import { CausalLM } from '../models/llama.js';
import { type LoadWeightsOptions, loadWeights } from './load-weights.js';
import { type PretrainedModel, parseGenerationConfig } from './pretrained.js';

/** Whether a file name names a GGUF model (`*.gguf`). */
export function isGgufPath(name: string): boolean {
  return /\.gguf$/i.test(name);
}

/**
 * Loads a GGUF model file (llama, qwen2, qwen3 architectures) as a Hugging Face model: the config
 * from its metadata, the tokenizer rebuilt from `tokenizer.ggml.*` (returned as tokenizer.json and
 * tokenizer_config.json files too, so saving the model or an adapter writes a Hugging Face
 * folder), and the weights read one tensor at a time under Hugging Face names. Quantized tensors
 * are dequantized to float32 on the way to the device.
 */
export async function loadGguf(
  device: Device,
  source: GgufSource,
  options: LoadWeightsOptions & { fileName?: string } = {},
): Promise<PretrainedModel & { ggufName: string | undefined }> {
  const file = await readGguf(source, { fileName: options.fileName });
  const gguf = openGgufModel(file);
  const config = parseModelConfig(gguf.config);
  const generationConfig = parseGenerationConfig(gguf.generationConfig);
  const encoder = new TextEncoder();
  let tokenizer: Tokenizer | null = null;
  const tokenizerFiles: Record<string, Uint8Array> = {};
  if (gguf.tokenizer) {
    const tokenizerJsonText = JSON.stringify(gguf.tokenizer.tokenizerJson);
    const tokenizerConfigText = JSON.stringify(gguf.tokenizer.tokenizerConfig, null, 2);
    try {
      tokenizer = Tokenizer.fromJSON(tokenizerJsonText, tokenizerConfigText);
    } catch (error) {
      throw new ModelError(
        `${file.fileName ?? 'GGUF file'}: cannot rebuild the tokenizer: ${(error as Error).message}`,
      );
    }
    tokenizerFiles['tokenizer.json'] = encoder.encode(tokenizerJsonText);
    tokenizerFiles['tokenizer_config.json'] = encoder.encode(tokenizerConfigText);
  }
  const model = new CausalLM(device, config);
  try {
    await loadWeights(model, gguf.tensors(), options);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return {
    model,
    config,
    tokenizer,
    generationConfig,
    tokenizerFiles,
    ggufName: gguf.name,
  };
}
