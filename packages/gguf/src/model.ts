import { ggufArchitectureMetadata, ggufArchitectureOf, huggingFaceConfigOf } from './architecture.js';
import { dequantize } from './dequantize.js';
import { GgufError } from './errors.js';
import {
  fixedFactorsOf,
  gemmaQueryFactor,
  llama3FrequencyFactors,
  ropeFieldsOf,
  ropeScalingOfFactors,
} from './families.js';
import { GGML_BLOCK_LAYOUT, type GgmlTypeName, supportedTypeName } from './ggml-types.js';
import { type GgufValue, gguf } from './metadata.js';
import { type QuantizableType, quantize } from './quantize.js';
import type { GgufFile } from './read.js';
import { ggufTensorName, huggingFaceTensorName, permutedHeads, permuteRotaryRows } from './tensor-names.js';
import {
  ggufTokenizerMetadata,
  type HuggingFaceTokenizerFiles,
  huggingFaceTokenizerOf,
} from './vocabulary.js';
import type { GgufTensorInput } from './write.js';

/**
 * A tensor of a GGUF model under its Hugging Face name: decoded to float32 bytes (`dtype` F32),
 * or, when the caller asked to keep its type, the stored blocks in ggml's layout (`dtype` is then
 * the type name, e.g. Q8_0; rows already in Hugging Face order).
 */
export interface GgufModelTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
  /** The type it had in the file (`Q4_K`, `F16`, ...). */
  storedType: string;
}

/** Options of `GgufModel.tensors`. */
export interface GgufTensorReadOptions {
  /** Tensors for which this returns true come back in their stored type instead of float32. */
  keepStored?: (name: string, storedType: string, shape: readonly number[]) => boolean;
}

/** A GGUF model seen as a Hugging Face model folder. */
export interface GgufModel {
  /** `general.architecture` (llama, qwen2, qwen3). */
  architecture: string;
  /** config.json equivalent. */
  config: Record<string, unknown>;
  /** null when the file has no `tokenizer.ggml.model`. */
  tokenizer: HuggingFaceTokenizerFiles | null;
  /** generation_config.json equivalent (bos/eos). */
  generationConfig: Record<string, unknown>;
  /** `general.name`, when set. */
  name: string | undefined;
  /** The tensors one at a time, in file order, renamed and (for llama) un-permuted. */
  tensors(options?: GgufTensorReadOptions): AsyncGenerator<GgufModelTensor>;
}

/** Rotary factors llama.cpp stores as tensors: they become config.json's rope_scaling. */
const ROPE_TENSORS = new Set(['rope_freqs.weight', 'rope_factors_long.weight', 'rope_factors_short.weight']);

/** Gemma's RMSNorm weights: llama.cpp stores (1 + w), Hugging Face w. */
function storesNormPlusOne(architecture: string, huggingFaceName: string): boolean {
  return (architecture === 'gemma2' || architecture === 'gemma3') && /norm\.weight$/.test(huggingFaceName);
}

async function factorTensor(file: GgufFile, name: string): Promise<Float32Array> {
  const info = file.info(name)!;
  const type = supportedTypeName(info.type)!;
  if (info.shape.length !== 1) {
    throw new GgufError(`must be a vector of factors, got shape [${info.shape.join(', ')}]`, {
      fileName: file.fileName,
      tensorName: name,
    });
  }
  const { data } = await file.readRaw(name);
  return dequantize(type, data, info.elements);
}

/** config.json's rope_scaling from the rotary factor tensors of a file (Llama 3's rope_freqs, Phi-3's LongRoPE). */
async function readRopeTensors(file: GgufFile, architecture: string, config: Record<string, unknown>) {
  const headDim = Number(config.head_dim);
  const rotaryDim = Math.floor(headDim * Number(config.partial_rotary_factor ?? 1));
  const where = { fileName: file.fileName };
  const checkLength = (name: string, factors: Float32Array) => {
    if (factors.length !== rotaryDim / 2) {
      throw new GgufError(
        `holds ${factors.length} factors; the rotary width ${rotaryDim} needs ${rotaryDim / 2}`,
        {
          ...where,
          tensorName: name,
        },
      );
    }
  };
  if (file.has('rope_freqs.weight')) {
    if (config.rope_scaling !== null) {
      throw new GgufError(
        'has both rope_freqs.weight and rope.scaling keys: webtune cannot combine them',
        where,
      );
    }
    const factors = await factorTensor(file, 'rope_freqs.weight');
    checkLength('rope_freqs.weight', factors);
    config.rope_scaling = ropeScalingOfFactors(
      factors,
      Number(config.rope_theta),
      rotaryDim,
      Number(config.max_position_embeddings),
    );
  }
  const hasLong = file.has('rope_factors_long.weight');
  if (hasLong || file.has('rope_factors_short.weight')) {
    if (architecture !== 'phi3' || !hasLong || !file.has('rope_factors_short.weight')) {
      throw new GgufError(
        'LongRoPE factors need both rope_factors_long and rope_factors_short, in a phi3 file',
        where,
      );
    }
    const long = await factorTensor(file, 'rope_factors_long.weight');
    const short = await factorTensor(file, 'rope_factors_short.weight');
    checkLength('rope_factors_long.weight', long);
    checkLength('rope_factors_short.weight', short);
    const original = Number(config.original_max_position_embeddings);
    const scaling: Record<string, unknown> = {
      type: 'longrope',
      rope_type: 'longrope',
      original_max_position_embeddings: original,
      short_factor: [...short],
      long_factor: [...long],
    };
    const attention = file.number('phi3.rope.scaling.attn_factor');
    const factor = Number(config.max_position_embeddings) / original;
    const computed = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
    if (attention !== undefined && Math.abs(attention - computed) > 1e-6 * computed) {
      scaling.attention_factor = attention;
    }
    config.rope_scaling = scaling;
  }
}

/**
 * Reads a GGUF model file as the parts of a Hugging Face model: config, tokenizer files and the
 * weights under Hugging Face names. For Llama-architecture files the q/k rows are permuted back
 * from llama.cpp's interleaved RoPE layout. Every tensor is checked up front: one that has no
 * Hugging Face name or a type webtune cannot decode fails now, naming it.
 */
export async function openGgufModel(file: GgufFile): Promise<GgufModel> {
  const config = huggingFaceConfigOf(file);
  const architecture = file.string('general.architecture')!;
  await readRopeTensors(file, architecture, config);
  file.assertDecodable();
  const heads = {
    attention: config.num_attention_heads as number,
    keyValue: config.num_key_value_heads as number,
  };
  const mapped = file.tensors.flatMap((info) => {
    if (ROPE_TENSORS.has(info.name)) return [];
    const name = huggingFaceTensorName(info.name, architecture);
    if (name === undefined) {
      throw new GgufError(`has no Hugging Face equivalent in a ${architecture} model`, {
        fileName: file.fileName,
        tensorName: info.name,
      });
    }
    return [{ info, name }];
  });
  const tokenizer = file.metadata.has('tokenizer.ggml.model') ? huggingFaceTokenizerOf(file) : null;
  const generationConfig: Record<string, unknown> = {};
  if (config.bos_token_id !== undefined) generationConfig.bos_token_id = config.bos_token_id;
  if (config.eos_token_id !== undefined) generationConfig.eos_token_id = config.eos_token_id;
  return {
    architecture,
    config,
    tokenizer,
    generationConfig,
    name: file.string('general.name'),
    async *tensors(options: GgufTensorReadOptions = {}) {
      for (const { info, name } of mapped) {
        const type = supportedTypeName(info.type)!;
        let { data } = await file.readRaw(info.name);
        const permute = permutedHeads(architecture, name, heads);
        if (permute > 0) data = permuteRotaryRows(data, info.shape[0], permute, false, info.name);
        if (options.keepStored?.(name, type, info.shape)) {
          yield { name, dtype: type, shape: [...info.shape], data, storedType: type };
          continue;
        }
        const values = dequantize(type, data, info.elements);
        if (storesNormPlusOne(architecture, name)) for (let i = 0; i < values.length; i++) values[i] -= 1;
        yield {
          name,
          dtype: 'F32',
          shape: [...info.shape],
          data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
          storedType: info.typeName,
        };
      }
    },
  };
}

/** Whole-file types `webtune export` writes, with llama.cpp's `general.file_type` ids. */
export const GGUF_FILE_TYPES = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 7,
  Q4_K_M: 15,
  BF16: 32,
} as const;

export type GgufFileType = keyof typeof GGUF_FILE_TYPES;

/** Types tried when a tensor's rows are not whole blocks of the wanted type (llama.cpp's fallbacks). */
const FALLBACK: Partial<Record<QuantizableType, QuantizableType>> = {
  Q4_K: 'Q5_0',
  Q6_K: 'Q8_0',
  Q5_0: 'F16',
  Q8_0: 'F16',
  Q4_0: 'F16',
};

/** llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third between. */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= 7 * eighth || (layer - eighth) % 3 === 2;
}

/**
 * The storage type of one tensor in a `fileType` export. Norms and biases (1-D) stay F32. Q4_0
 * and Q4_K_M store the output head (the embedding when tied) in Q6_K, as llama-quantize does;
 * Q4_K_M also keeps attn_v and ffn_down in Q6_K in the layers llama.cpp's `use_more_bits` picks
 * and puts everything else in Q4_K. A type whose blocks do not divide the row length falls back
 * (Q4_K -> Q5_0, Q6_K -> Q8_0, 32-blocks -> F16).
 */
export function ggufTensorType(
  fileType: GgufFileType,
  ggufName: string,
  shape: readonly number[],
  layers: number,
  tiedEmbeddings: boolean,
): QuantizableType {
  if (shape.length < 2) return 'F32';
  const isHead = ggufName === 'output.weight' || (tiedEmbeddings && ggufName === 'token_embd.weight');
  let type: QuantizableType;
  switch (fileType) {
    case 'F32':
    case 'F16':
    case 'BF16':
    case 'Q8_0':
      type = fileType;
      break;
    case 'Q4_0':
      type = isHead ? 'Q6_K' : 'Q4_0';
      break;
    case 'Q4_K_M': {
      const layer = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(ggufName);
      type = isHead || (layer && useMoreBits(Number(layer[1]), layers)) ? 'Q6_K' : 'Q4_K';
      break;
    }
  }
  const rowLength = shape[shape.length - 1];
  while (rowLength % GGML_BLOCK_LAYOUT[type].blockSize !== 0) type = FALLBACK[type] ?? 'F16';
  return type;
}

/** A Hugging Face tensor to export: its name, shape and float32 values on demand. */
export interface ExportTensor {
  name: string;
  shape: readonly number[];
  values: () => Float32Array | Promise<Float32Array>;
}

/** What `ggufModelFile` writes. */
export interface GgufModelExport {
  /** config.json (object). */
  config: Record<string, unknown>;
  /** Without one the file has no tokenizer: llama.cpp will not load it (tests only). */
  tokenizer: HuggingFaceTokenizerFiles | null;
  tensors: readonly ExportTensor[];
  fileType: GgufFileType;
  /** general.name. */
  name?: string;
}

/**
 * The metadata and tensor list of a GGUF model file for a Hugging Face model: architecture keys,
 * tokenizer and chat template, llama.cpp tensor names, q/k rows permuted for Llama, each tensor
 * quantized when the writer reaches it. Pass the result to `writeGguf`.
 */
export function ggufModelFile(model: GgufModelExport): {
  metadata: [string, GgufValue][];
  tensors: GgufTensorInput[];
} {
  const architecture = ggufArchitectureOf(model.config);
  const layers = Number(model.config.num_hidden_layers);
  const heads = {
    attention: Number(model.config.num_attention_heads),
    keyValue: Number(model.config.num_key_value_heads ?? model.config.num_attention_heads),
  };
  const tied = model.config.tie_word_embeddings === true;
  const vocabSize = Number(model.config.vocab_size);
  const architectureKeys = ggufArchitectureMetadata(model.config);
  const metadata: [string, GgufValue][] = [
    ...architectureKeys.slice(0, 1),
    ['general.type', gguf.string('model')],
    ['general.name', gguf.string(model.name ?? 'webtune export')],
    ['general.file_type', gguf.uint32(GGUF_FILE_TYPES[model.fileType])],
    ['general.quantization_version', gguf.uint32(2)],
    ...architectureKeys.slice(1),
    ...(model.tokenizer ? ggufTokenizerMetadata(model.tokenizer, vocabSize) : []),
  ];
  const tensors: GgufTensorInput[] = ggufRopeTensors(architecture, model.config);
  const queryFactor = gemmaQueryFactor(architecture, model.config);
  for (const tensor of model.tensors) {
    if (tied && tensor.name === 'lm_head.weight') continue;
    const name = ggufTensorName(tensor.name, architecture);
    if (name === undefined) throw new GgufError(`has no llama.cpp name`, { tensorName: tensor.name });
    const type = ggufTensorType(model.fileType, name, tensor.shape, layers, tied);
    const permute = permutedHeads(architecture, tensor.name, heads);
    tensors.push({
      name,
      shape: tensor.shape,
      type: type as GgmlTypeName,
      data: async () => {
        let values = await tensor.values();
        const plusOne = storesNormPlusOne(architecture, tensor.name);
        // Gemma: llama.cpp's fixed attention scale times queryFactor is query_pre_attn_scalar^-0.5.
        const scale =
          queryFactor === 1
            ? 1
            : architecture === 'gemma2'
              ? /\.self_attn\.q_proj\.weight$/.test(tensor.name)
                ? queryFactor
                : 1
              : /\.self_attn\.q_norm\.weight$/.test(tensor.name)
                ? queryFactor
                : 1;
        if (plusOne || scale !== 1) {
          values = values.map((value) => (plusOne ? value + 1 : value) * scale);
        }
        if (permute > 0) {
          const bytes = permuteRotaryRows(
            new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
            tensor.shape[0],
            permute,
            true,
            tensor.name,
          );
          values = new Float32Array(bytes.buffer, bytes.byteOffset, values.length);
        }
        return quantize(type, values);
      },
    });
  }
  return { metadata, tensors };
}

/** The rotary factor tensors of an export: Llama 3's rope_freqs, Phi-3's LongRoPE tables. */
function ggufRopeTensors(architecture: string, config: Record<string, unknown>): GgufTensorInput[] {
  const rope = ropeFieldsOf(config);
  const headDim = Number(config.head_dim ?? Number(config.hidden_size) / Number(config.num_attention_heads));
  const rotaryDim = Math.floor(headDim * rope.partialRotaryFactor);
  const vector = (name: string, values: Float32Array | readonly number[]): GgufTensorInput => {
    const data = Float32Array.from(values);
    if (data.length !== rotaryDim / 2) {
      throw new GgufError(`needs ${rotaryDim / 2} factors (rotary width ${rotaryDim}), got ${data.length}`, {
        tensorName: name,
      });
    }
    return { name, shape: [data.length], type: 'F32', data: async () => quantize('F32', data) };
  };
  const scaling = rope.scaling;
  if (!scaling) return [];
  if (scaling.rope_type === 'llama3') {
    return [vector('rope_freqs.weight', llama3FrequencyFactors(scaling, rope.theta, rotaryDim))];
  }
  if (architecture === 'phi3' && scaling.rope_type === 'longrope') {
    return [
      vector('rope_factors_long.weight', scaling.long_factor as number[]),
      vector('rope_factors_short.weight', scaling.short_factor as number[]),
    ];
  }
  const fixed = architecture === 'llama' ? fixedFactorsOf(scaling) : null;
  return fixed ? [vector('rope_freqs.weight', fixed)] : [];
}
