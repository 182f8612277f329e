import { ggufArchitectureOf } from './architecture.js';
import { GgufError } from './errors.js';
import { gemmaQueryFactor } from './families.js';
import { type GgufValue, gguf } from './metadata.js';
import { quantize } from './quantize.js';
import { ggufModuleName, permutedHeads, permuteRotaryRows } from './tensor-names.js';
import type { GgufTensorInput } from './write.js';

/** A tensor of a PEFT adapter file (`base_model.model.<module>.lora_A.weight`...). */
export interface AdapterTensor {
  name: string;
  shape: readonly number[];
  values: () => Float32Array | Promise<Float32Array>;
}

/**
 * A GGUF LoRA adapter for llama.cpp's `--lora`, from a PEFT LoRA adapter: `general.type`
 * adapter, `adapter.type` lora, `adapter.lora.alpha`, and per module `<gguf name>.weight.lora_a`
 * ([r, in], PEFT's lora_A) and `.lora_b` ([out, r], PEFT's lora_B) in F32. llama.cpp scales by
 * alpha / r, so rsLoRA's alpha / sqrt(r) is written as alpha * sqrt(r). For Llama bases the rows
 * of lora_b on q/k are permuted like the base weights. DoRA, per-module ranks or alphas, and
 * modules_to_save have no llama.cpp equivalent and are refused.
 */
export function ggufLoraFile(
  adapterConfig: Record<string, unknown>,
  baseConfig: Record<string, unknown>,
  tensors: readonly AdapterTensor[],
  name = 'webtune LoRA adapter',
): { metadata: [string, GgufValue][]; tensors: GgufTensorInput[] } {
  const architecture = ggufArchitectureOf(baseConfig);
  if (adapterConfig.peft_type !== undefined && adapterConfig.peft_type !== 'LORA') {
    throw new GgufError(`a ${String(adapterConfig.peft_type)} adapter has no GGUF LoRA export (LORA does)`);
  }
  if (adapterConfig.use_dora === true)
    throw new GgufError('DoRA adapters have no llama.cpp equivalent: merge the adapter and export the model');
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const value = adapterConfig[key];
    if (value && typeof value === 'object' && Object.keys(value).length > 0) {
      throw new GgufError(
        `${key} (per-module ranks or alphas) has no llama.cpp equivalent: merge the adapter and export the model`,
      );
    }
  }
  const rank = Number(adapterConfig.r);
  let alpha = Number(adapterConfig.lora_alpha ?? rank);
  if (!(rank > 0) || !(alpha > 0))
    throw new GgufError(`adapter_config.json needs positive r and lora_alpha, got ${rank} and ${alpha}`);
  if (adapterConfig.use_rslora === true) alpha *= Math.sqrt(rank);
  const heads = {
    attention: Number(baseConfig.num_attention_heads),
    keyValue: Number(baseConfig.num_key_value_heads ?? baseConfig.num_attention_heads),
  };
  const queryFactor = architecture === 'gemma2' ? gemmaQueryFactor(architecture, baseConfig) : 1;
  const out: GgufTensorInput[] = [];
  for (const tensor of tensors) {
    const match = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(tensor.name);
    if (!match) {
      throw new GgufError('is not a lora_A/lora_B weight: only plain LoRA adapters export to GGUF', {
        tensorName: tensor.name,
      });
    }
    const module = ggufModuleName(match[1], architecture);
    if (module === undefined)
      throw new GgufError('targets a module llama.cpp has no name for', { tensorName: tensor.name });
    const isB = match[2] === 'B';
    const permute = isB ? permutedHeads(architecture, `${match[1]}.weight`, heads) : 0;
    // Gemma 2's exported q_proj carries the query factor (see gemmaQueryFactor): so does its lora_B.
    const scale = isB && /\.self_attn\.q_proj$/.test(match[1]) ? queryFactor : 1;
    out.push({
      name: `${module}.weight.lora_${isB ? 'b' : 'a'}`,
      shape: tensor.shape,
      type: 'F32',
      data: async () => {
        let values = await tensor.values();
        if (scale !== 1) values = values.map((value) => value * scale);
        const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
        return permute > 0
          ? permuteRotaryRows(bytes, tensor.shape[0], permute, true, tensor.name)
          : quantize('F32', values);
      },
    });
  }
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(architecture)],
    ['general.type', gguf.string('adapter')],
    ['general.name', gguf.string(name)],
    ['adapter.type', gguf.string('lora')],
    ['adapter.lora.alpha', gguf.float32(alpha)],
  ];
  return { metadata, tensors: out };
}
