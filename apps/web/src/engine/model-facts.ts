/*
 * What the engine tells about a loaded model beyond its shape: problems a run would have with it,
 * and the base model name its adapters record (never a made-up one for loose files).
 */
import type { PretrainedModel } from '@webtune/nn';
import type { RunPlan } from '@webtune/train';

/**
 * The method with the adapter's base_model_name_or_path the picked files support: the folder, URL
 * or recorded name, or none (never the planner's stand-in for loose files).
 */
export function withBaseName(method: RunPlan['method'], baseName: string | undefined): RunPlan['method'] {
  if (!('config' in method) || typeof method.config !== 'object' || method.config === null) return method;
  const config = { ...(method.config as unknown as Record<string, unknown>) };
  if (!('base_model_name_or_path' in config)) return method;
  // null, as PEFT writes it when the base is unknown.
  config.base_model_name_or_path = baseName ?? null;
  return { ...method, config } as unknown as RunPlan['method'];
}

/** What would silently go wrong in a run with this model. */
export function modelWarnings(pretrained: PretrainedModel): string[] {
  const warnings: string[] = [];
  const { tokenizer, tokenizerFiles } = pretrained;
  if (tokenizer && !tokenizerFiles['tokenizer_config.json'] && tokenizer.eosTokenId === undefined) {
    warnings.push(
      'No tokenizer_config.json was loaded, so the tokenizer has no EOS token: training rows will not end with one and the tuned model may not learn to stop. Load the model folder with its tokenizer_config.json.',
    );
  }
  return warnings;
}

/** `_name_or_path` of the picked config.json, if it records one. */
export async function recordedNameOf(files: Map<string, Blob>): Promise<string | undefined> {
  try {
    const config = JSON.parse(await files.get('config.json')!.text()) as Record<string, unknown>;
    const name = config._name_or_path;
    return typeof name === 'string' && name.trim() !== '' ? name : undefined;
  } catch {
    return undefined;
  }
}
