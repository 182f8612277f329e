import { GgufError } from './errors.js';

/** llama.cpp's per-layer tensor names and the Hugging Face module paths they stand for. */
const LAYER_NAMES: readonly [string, string][] = [
  ['attn_norm', 'input_layernorm'],
  ['attn_q', 'self_attn.q_proj'],
  ['attn_k', 'self_attn.k_proj'],
  ['attn_v', 'self_attn.v_proj'],
  ['attn_output', 'self_attn.o_proj'],
  ['attn_q_norm', 'self_attn.q_norm'],
  ['attn_k_norm', 'self_attn.k_norm'],
  ['ffn_norm', 'post_attention_layernorm'],
  ['ffn_gate', 'mlp.gate_proj'],
  ['ffn_up', 'mlp.up_proj'],
  ['ffn_down', 'mlp.down_proj'],
];

/**
 * Gemma 2/3 norm the attention and MLP outputs too: Hugging Face's `post_attention_layernorm` is
 * llama.cpp's `post_attention_norm` there, and the norm before the MLP is `pre_feedforward_layernorm`.
 */
const GEMMA_LAYER_NAMES: readonly [string, string][] = [
  ...LAYER_NAMES.filter(([gguf]) => gguf !== 'ffn_norm'),
  ['post_attention_norm', 'post_attention_layernorm'],
  ['ffn_norm', 'pre_feedforward_layernorm'],
  ['post_ffw_norm', 'post_feedforward_layernorm'],
];

/** Phi-3 fuses q, k and v into `qkv_proj` and gate and up into `gate_up_proj` (llama.cpp's ffn_up). */
const PHI3_LAYER_NAMES: readonly [string, string][] = [
  ['attn_norm', 'input_layernorm'],
  ['attn_qkv', 'self_attn.qkv_proj'],
  ['attn_output', 'self_attn.o_proj'],
  ['ffn_norm', 'post_attention_layernorm'],
  ['ffn_up', 'mlp.gate_up_proj'],
  ['ffn_down', 'mlp.down_proj'],
];

const GLOBAL_NAMES: readonly [string, string][] = [
  ['token_embd', 'model.embed_tokens'],
  ['output_norm', 'model.norm'],
  ['output', 'lm_head'],
];

interface NameMaps {
  toHf: Map<string, string>;
  toGguf: Map<string, string>;
}

function nameMaps(layers: readonly [string, string][]): NameMaps {
  return { toHf: new Map(layers), toGguf: new Map(layers.map(([gguf, hf]) => [hf, gguf])) };
}

const LAYER_MAPS: Record<string, NameMaps> = {
  llama: nameMaps(LAYER_NAMES),
  gemma2: nameMaps(GEMMA_LAYER_NAMES),
  gemma3: nameMaps(GEMMA_LAYER_NAMES),
  phi3: nameMaps(PHI3_LAYER_NAMES),
};

/** The layer name maps of a GGUF architecture (Llama's unless the architecture has its own). */
function layerMaps(architecture: string): NameMaps {
  return LAYER_MAPS[architecture] ?? LAYER_MAPS.llama;
}
const globalToHf = new Map(GLOBAL_NAMES);
const globalToGguf = new Map(GLOBAL_NAMES.map(([gguf, hf]) => [hf, gguf]));

/** The Hugging Face name of a llama.cpp tensor name, or undefined when there is none. */
export function huggingFaceTensorName(ggufName: string, architecture = 'llama'): string | undefined {
  const layer = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  if (layer) {
    const module = layerMaps(architecture).toHf.get(layer[2]);
    return module === undefined ? undefined : `model.layers.${layer[1]}.${module}.${layer[3]}`;
  }
  const global = /^([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  if (global) {
    const module = globalToHf.get(global[1]);
    return module === undefined ? undefined : `${module}.${global[2]}`;
  }
  return undefined;
}

/** The llama.cpp name of a Hugging Face tensor name (`model.layers.3.mlp.up_proj.weight` -> `blk.3.ffn_up.weight`). */
export function ggufTensorName(huggingFaceName: string, architecture = 'llama'): string | undefined {
  const layer = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(huggingFaceName);
  if (layer) {
    const name = layerMaps(architecture).toGguf.get(layer[2]);
    return name === undefined ? undefined : `blk.${layer[1]}.${name}.${layer[3]}`;
  }
  const global = /^(.+)\.(weight|bias)$/.exec(huggingFaceName);
  if (global) {
    const name = globalToGguf.get(global[1]);
    return name === undefined ? undefined : `${name}.${global[2]}`;
  }
  return undefined;
}

/** `model.layers.3.self_attn.q_proj` -> `blk.3.attn_q` (module paths, for LoRA adapters). */
export function ggufModuleName(huggingFaceModule: string, architecture = 'llama'): string | undefined {
  return ggufTensorName(`${huggingFaceModule}.weight`, architecture)?.replace(/\.weight$/, '');
}

/**
 * Which heads' rows llama.cpp permuted: for Llama-architecture files, convert_hf_to_gguf reorders
 * the rows of q_proj/k_proj (weights and biases) from Hugging Face's rotate-half RoPE layout to
 * Meta's interleaved pairs. Returns the head count to undo (or apply) it with, or 0.
 */
export function permutedHeads(
  architecture: string,
  huggingFaceName: string,
  heads: { attention: number; keyValue: number },
): number {
  // SmolLM3 is converted as a Llama model (llama.cpp rotates its pairs the same way).
  if (architecture !== 'llama' && architecture !== 'smollm3') return 0;
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(huggingFaceName)) return heads.attention;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(huggingFaceName)) return heads.keyValue;
  return 0;
}

/**
 * Reorders whole rows of a tensor stored as `rows` rows of `rowBytes` bytes (any type: rows are
 * whole blocks), head by head. `toInterleaved` false maps llama.cpp's interleaved rotary pairs
 * (2p, 2p + 1) to Hugging Face's rotate-half pairs (p, p + headDim / 2); true maps back.
 */
export function permuteRotaryRows(
  data: Uint8Array,
  rows: number,
  heads: number,
  toInterleaved: boolean,
  tensorName?: string,
): Uint8Array {
  if (heads <= 0 || rows % heads !== 0 || (rows / heads) % 2 !== 0 || data.byteLength % rows !== 0) {
    throw new GgufError(`cannot split ${rows} rows into ${heads} heads of rotary pairs`, { tensorName });
  }
  const rowBytes = data.byteLength / rows;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Uint8Array(data.byteLength);
  for (let head = 0; head < heads; head++) {
    for (let pair = 0; pair < half; pair++) {
      for (let side = 0; side < 2; side++) {
        const interleaved = (head * headDim + 2 * pair + side) * rowBytes;
        const rotateHalf = (head * headDim + side * half + pair) * rowBytes;
        const [from, to] = toInterleaved ? [rotateHalf, interleaved] : [interleaved, rotateHalf];
        out.set(data.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}
