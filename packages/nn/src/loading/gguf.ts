import { type GgufSource, openGgufModel, readGguf } from '@webtune/gguf';
import type { SafetensorsEntry } from '@webtune/safetensors';
import {
  type Device,
  fitsFormat,
  isQuantized,
  type PackedFormat,
  packedWeightFromBytes,
} from '@webtune/tensors';
import { Tokenizer } from '@webtune/tokenizers';
import { parseModelConfig } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import { CausalLM } from '../models/llama.js';
import { packedTarget } from './frozen-weights.js';
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
 * folder), and the weights read one tensor at a time under Hugging Face names. Decoder projections
 * stored as Q8_0, Q4_0 or Q4_K stay in those blocks on the device (see `keepQuantized`); other
 * quantized types (Q4_1, Q5_x, Q6_K) are dequantized on the way (to float32, or packed in
 * `baseFormat` where one is given): a Q4_K_M file keeps its Q4_K projections and decodes the Q6_K
 * ones.
 */
export async function loadGguf(
  device: Device,
  source: GgufSource,
  options: LoadWeightsOptions & {
    fileName?: string;
    /**
     * Keep the decoder projections stored as Q8_0, Q4_0 or Q4_K in the file packed on the device, in the
     * same ggml blocks (frozen: LoRA trains on top, full fine-tuning is refused), instead of
     * decoding them to float32. Default true; export turns it off to merge adapters.
     */
    keepQuantized?: boolean;
  } = {},
): Promise<PretrainedModel & { ggufName: string | undefined; packedTensors: number }> {
  const file = await readGguf(source, { fileName: options.fileName });
  const gguf = await openGgufModel(file);
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
  const packedFormats: Record<string, PackedFormat> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_K: 'q4_k' };
  // A quantized tensor stays as stored unless another quantized format was asked: decoding it to
  // f32 or f16 would cost memory and win back no precision.
  const asked = options.baseFormat ?? 'f32';
  const keep = (options.keepQuantized ?? true) && (asked === 'f32' || !isQuantized(asked));
  let packedTensors = 0;
  // Projections stored as Q8_0/Q4_0/Q4_K go to the device as they are; the rest stream to loadWeights.
  async function* entries(): AsyncGenerator<SafetensorsEntry> {
    const stream = gguf.tensors({
      keepStored: (name, type, shape) =>
        keep &&
        packedFormats[type] !== undefined &&
        shape.length === 2 &&
        fitsFormat(packedFormats[type], shape[1]) &&
        packedTarget(model, name) !== null,
    });
    for await (const tensor of stream) {
      if (tensor.dtype === 'F32') {
        yield tensor as SafetensorsEntry;
        continue;
      }
      const target = packedTarget(model, tensor.name)!;
      const [rows, columns] = tensor.shape;
      target.owner.setPackedParameter(
        'weight',
        packedWeightFromBytes(device, packedFormats[tensor.dtype], [rows, columns], tensor.data),
      );
      packedTensors++;
    }
  }
  try {
    await loadWeights(model, entries(), options);
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
    packedTensors,
  };
}
