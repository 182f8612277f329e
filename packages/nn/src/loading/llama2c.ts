import type { RandomAccessReader } from '@webtune/safetensors';
import type { Device } from '@webtune/tensors';
import { createModelConfig, type ModelConfig } from '../config/model-config.js';
import { ModelError } from '../errors.js';
import { CausalLM } from '../models/llama.js';
import type { LoadProgress } from './load-weights.js';

/** The 7 int32 fields at the start of a llama2.c checkpoint. */
export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  /** Whether the classifier is the embedding table (a positive vocab_size in the file). */
  sharedClassifier: boolean;
  seqLen: number;
}

const HEADER_BYTES = 28;

/** Reads and checks a llama2.c header against the file size. */
export function parseLlama2cHeader(
  bytes: Uint8Array,
  fileSize: number,
  fileName = 'checkpoint',
): Llama2cHeader {
  if (fileSize < HEADER_BYTES || bytes.length < HEADER_BYTES) {
    throw new ModelError(`${fileName}: ${fileSize} bytes is too short for a llama2.c checkpoint header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const field = (i: number) => view.getInt32(i * 4, true);
  const vocab = field(5);
  const header: Llama2cHeader = {
    dim: field(0),
    hiddenDim: field(1),
    layers: field(2),
    heads: field(3),
    kvHeads: field(4),
    vocabSize: Math.abs(vocab),
    sharedClassifier: vocab > 0,
    seqLen: field(6),
  };
  const names: [keyof Llama2cHeader, number][] = [
    ['dim', header.dim],
    ['hiddenDim', header.hiddenDim],
    ['layers', header.layers],
    ['heads', header.heads],
    ['kvHeads', header.kvHeads],
    ['vocabSize', header.vocabSize],
    ['seqLen', header.seqLen],
  ];
  for (const [name, value] of names) {
    if (!(value > 0)) throw new ModelError(`${fileName}: header field ${name} is ${value}, not positive`);
  }
  if (
    header.dim % header.heads !== 0 ||
    header.heads % header.kvHeads !== 0 ||
    (header.dim / header.heads) % 2 !== 0
  ) {
    throw new ModelError(
      `${fileName}: dim ${header.dim}, heads ${header.heads}, kv heads ${header.kvHeads} do not form whole, even heads`,
    );
  }
  const expected = HEADER_BYTES + 4 * llama2cFloatCount(header);
  if (fileSize !== expected) {
    throw new ModelError(
      `${fileName}: ${fileSize} bytes, but a llama2.c float32 checkpoint with this header holds ${expected} (is it a quantized or v1+ export?)`,
    );
  }
  return header;
}

/** Floats after the header: the weights in run.c's order, the legacy freq_cis tables, wcls. */
function llama2cFloatCount(h: Llama2cHeader): number {
  return tensorPlan(h).reduce((total, t) => total + t.count, 0);
}

interface PlannedTensor {
  /** Hugging Face name with `{i}` for the layer, or null for skipped data. */
  name: string | null;
  /** Floats for all layers together. */
  count: number;
  /** Shape of one layer's slice ([out, in] for linear weights). */
  shape: number[];
  perLayer: boolean;
  /** Rows to permute from llama2.c's interleaved RoPE pairs to the rotate-half layout. */
  ropeHeads?: number;
}

function tensorPlan(h: Llama2cHeader): PlannedTensor[] {
  const headDim = h.dim / h.heads;
  const kvDim = h.kvHeads * headDim;
  const L = h.layers;
  const plan: PlannedTensor[] = [
    {
      name: 'model.embed_tokens.weight',
      count: h.vocabSize * h.dim,
      shape: [h.vocabSize, h.dim],
      perLayer: false,
    },
    { name: 'model.layers.{i}.input_layernorm.weight', count: L * h.dim, shape: [h.dim], perLayer: true },
    {
      name: 'model.layers.{i}.self_attn.q_proj.weight',
      count: L * h.dim * h.dim,
      shape: [h.dim, h.dim],
      perLayer: true,
      ropeHeads: h.heads,
    },
    {
      name: 'model.layers.{i}.self_attn.k_proj.weight',
      count: L * h.dim * kvDim,
      shape: [kvDim, h.dim],
      perLayer: true,
      ropeHeads: h.kvHeads,
    },
    {
      name: 'model.layers.{i}.self_attn.v_proj.weight',
      count: L * h.dim * kvDim,
      shape: [kvDim, h.dim],
      perLayer: true,
    },
    {
      name: 'model.layers.{i}.self_attn.o_proj.weight',
      count: L * h.dim * h.dim,
      shape: [h.dim, h.dim],
      perLayer: true,
    },
    {
      name: 'model.layers.{i}.post_attention_layernorm.weight',
      count: L * h.dim,
      shape: [h.dim],
      perLayer: true,
    },
    {
      name: 'model.layers.{i}.mlp.gate_proj.weight',
      count: L * h.dim * h.hiddenDim,
      shape: [h.hiddenDim, h.dim],
      perLayer: true,
    },
    {
      name: 'model.layers.{i}.mlp.down_proj.weight',
      count: L * h.dim * h.hiddenDim,
      shape: [h.dim, h.hiddenDim],
      perLayer: true,
    },
    {
      name: 'model.layers.{i}.mlp.up_proj.weight',
      count: L * h.dim * h.hiddenDim,
      shape: [h.hiddenDim, h.dim],
      perLayer: true,
    },
    { name: 'model.norm.weight', count: h.dim, shape: [h.dim], perLayer: false },
    // freq_cis_real and freq_cis_imag: RoPE tables the legacy format still stores.
    { name: null, count: h.seqLen * (headDim / 2) * 2, shape: [], perLayer: false },
  ];
  if (!h.sharedClassifier) {
    plan.push({
      name: 'lm_head.weight',
      count: h.vocabSize * h.dim,
      shape: [h.vocabSize, h.dim],
      perLayer: false,
    });
  }
  return plan;
}

/** The model config a llama2.c header describes (Llama, rope_theta 10000, rms_norm_eps 1e-5). */
export function llama2cConfig(h: Llama2cHeader): ModelConfig {
  const config = createModelConfig({
    architecture: 'LlamaForCausalLM',
    hiddenSize: h.dim,
    intermediateSize: h.hiddenDim,
    numHiddenLayers: h.layers,
    numAttentionHeads: h.heads,
    numKeyValueHeads: h.kvHeads,
    headDim: h.dim / h.heads,
    vocabSize: h.vocabSize,
    maxPositionEmbeddings: h.seqLen,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: h.sharedClassifier,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  return config;
}

/**
 * Loads a llama2.c float32 checkpoint (Karpathy's `run.c` format, "version 0") into a CausalLM
 * with Hugging Face names. Reads one layer's slice of one tensor at a time. The query and key
 * rows are permuted from llama2.c's interleaved RoPE pairs to the rotate-half layout, as
 * transformers' conversion script does, so the model runs (and saves) as an ordinary HF Llama.
 */
export async function loadLlama2c(
  device: Device,
  reader: RandomAccessReader,
  options: { dtype?: 'f32' | 'f16'; onProgress?: (progress: LoadProgress) => void } = {},
): Promise<CausalLM> {
  const fileName = reader.name ?? 'checkpoint';
  const header = parseLlama2cHeader(await reader.read(0, HEADER_BYTES), reader.size, fileName);
  const config = llama2cConfig(header);
  const model = new CausalLM(device, config);
  const plan = tensorPlan(header);
  const total = model.missingParameters().length - (header.sharedClassifier ? 1 : 0);
  let offset = HEADER_BYTES;
  let loaded = 0;
  try {
    for (const tensor of plan) {
      if (tensor.name === null) {
        offset += tensor.count * 4;
        continue;
      }
      const layers = tensor.perLayer ? header.layers : 1;
      const perLayer = tensor.count / layers;
      for (let layer = 0; layer < layers; layer++) {
        const bytes = await reader.read(offset, perLayer * 4);
        offset += perLayer * 4;
        let values = littleEndianFloats(bytes);
        if (tensor.ropeHeads) values = interleavedToHalf(values, tensor.ropeHeads, tensor.shape);
        const name = tensor.name.replace('{i}', String(layer));
        model.setParameterByName(name, device.fromArray(values, tensor.shape, options.dtype ?? 'f32').keep());
        loaded++;
        options.onProgress?.({ name, loaded, total, bytes: offset - HEADER_BYTES });
      }
    }
    model.tieWeights();
    model.assertLoaded();
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

function littleEndianFloats(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return new Float32Array(bytes.slice().buffer);
}

/**
 * Reorders the rows of a q or k projection [heads * headDim, in] from interleaved rotary pairs
 * (2p, 2p + 1) to rotate-half pairs (p, p + headDim/2), head by head.
 */
export function interleavedToHalf(
  weight: Float32Array,
  heads: number,
  shape: readonly number[],
): Float32Array {
  const [rows, columns] = shape;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(weight.length);
  for (let h = 0; h < heads; h++) {
    for (let p = 0; p < half; p++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * p + j) * columns;
        const to = (h * headDim + j * half + p) * columns;
        out.set(weight.subarray(from, from + columns), to);
      }
    }
  }
  return out;
}
