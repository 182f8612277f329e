import type { Tensor } from '@webtune/tensors';

/** LoRA+'s settings (LLaMA-Factory's loraplus_lr_ratio and loraplus_lr_embedding). */
export interface LoraPlusSettings {
  /** The scheduled learning rate (learning_rate). */
  learningRate: number;
  /** loraplus_lr_ratio: lora_B (and every 1-D parameter) learns at ratio x learning_rate. */
  ratio: number;
  /** loraplus_lr_embedding: the learning rate of lora_embedding_B (default 1e-6). */
  embeddingLearningRate?: number;
}

/** Which of LoRA+'s parameter groups a parameter is in. */
export type LoraPlusGroup = 'lora_a' | 'lora_b' | 'embedding';

/**
 * LoRA+ (Hayou et al. 2024) as LLaMA-Factory builds its optimizer: the B matrices learn faster
 * than the A matrices. Its groups, by name and rank: `lora_embedding_B` -> embedding; `lora_B` or
 * any 1-D parameter (a DoRA magnitude, a bias) -> lora_b; everything else -> lora_a at the plain
 * learning rate. Weight decay follows the usual rule inside each group (norms and biases none).
 */
export function loraPlusGroupOf(name: string, parameter: Pick<Tensor, 'rank'>): LoraPlusGroup {
  if (name.includes('lora_embedding_B')) return 'embedding';
  if (name.includes('lora_B') || parameter.rank === 1) return 'lora_b';
  return 'lora_a';
}

/**
 * The learning-rate multiple of each parameter (AdamW's learningRateScale). The scheduler scales
 * every group's rate by the same factor, as PyTorch's LambdaLR does with several groups.
 */
export function loraPlusLearningRateScale(
  settings: LoraPlusSettings,
): (name: string, parameter: Pick<Tensor, 'rank'>) => number {
  if (!(settings.ratio > 0)) throw new Error(`LoRA+: loraplus_lr_ratio must be > 0, got ${settings.ratio}`);
  if (!(settings.learningRate > 0)) {
    throw new Error(`LoRA+: learning_rate must be > 0, got ${settings.learningRate}`);
  }
  const embedding = (settings.embeddingLearningRate ?? 1e-6) / settings.learningRate;
  return (name, parameter) => {
    const group = loraPlusGroupOf(name, parameter);
    return group === 'lora_b' ? settings.ratio : group === 'embedding' ? embedding : 1;
  };
}
