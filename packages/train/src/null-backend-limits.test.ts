import { CausalLM, createModelConfig, generate, initializeModel } from '@webtune/nn';
import { getPeftModel, loraConfig } from '@webtune/peft';
import { type AdapterClass, createDevice, type Device } from '@webtune/tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainableCausalLM, trainablePeftModel } from './model/trainable-model.js';
import { supervisedTask } from './tasks/sft-task.js';
import { train } from './trainer.js';

type ModelConfigInput = Parameters<typeof createModelConfig>[0];
/** One layer's shape: the sweep sets the layer count and the vocabulary. */
type LayerShape = Omit<ModelConfigInput, 'vocabSize' | 'numHiddenLayers'>;

/*
 * A compile-only sweep at real per-layer shapes under WebGPU's default limits: Dawn's null backend
 * holds exactly the default limits (8 storage buffers per stage, 16 KiB of workgroup storage, 256
 * invocations) and validates every pipeline with Tint, but runs no kernel (read-backs are zeroed
 * here so generation goes on). One decoder layer of each family's head size (64, 80, 96, 128 with
 * Qwen3's q/k norms, 256; Qwen2's biases), GQA, a padded batch: a LoRA step (forward, backward,
 * clipping, AdamW) then generate with the adapters, a full fine-tune step, and generate, for each
 * adapter class's kernels. The results are checked on lavapipe by default-limits.test.ts; this
 * proves that every kernel at these shapes fits.
 */
const CLASSES: AdapterClass[] = ['software', 'integrated', 'discrete'];
const SHAPES: Record<string, LayerShape> = {
  'Llama, head size 64': {
    hiddenSize: 512,
    intermediateSize: 1376,
    numAttentionHeads: 8,
    numKeyValueHeads: 2,
  },
  'Phi, head size 80': {
    hiddenSize: 640,
    intermediateSize: 1720,
    numAttentionHeads: 8,
    numKeyValueHeads: 8,
    headDim: 80,
  },
  'head size 96': {
    hiddenSize: 768,
    intermediateSize: 2048,
    numAttentionHeads: 8,
    numKeyValueHeads: 4,
    headDim: 96,
  },
  'Qwen3, head size 128': {
    architecture: 'Qwen3ForCausalLM',
    hiddenSize: 1024,
    intermediateSize: 3072,
    numAttentionHeads: 16,
    numKeyValueHeads: 8,
    headDim: 128,
    qkNorm: true,
  },
  'Qwen2, q/k/v biases': {
    architecture: 'Qwen2ForCausalLM',
    hiddenSize: 512,
    intermediateSize: 1376,
    numAttentionHeads: 8,
    numKeyValueHeads: 2,
    qkvBias: true,
  },
  'Gemma, head size 256': {
    hiddenSize: 512,
    intermediateSize: 1536,
    numAttentionHeads: 4,
    numKeyValueHeads: 1,
    headDim: 256,
  },
};

let available: string | null = null;
let restore = () => {};
const devices = new Map<AdapterClass, Device>();
beforeAll(async () => {
  for (const adapterClass of CLASSES) {
    try {
      const device = await createDevice({ adapterClass, dawnOptions: ['backend=null'] });
      if (device.info.device !== 'null-backend') {
        device.destroy();
        available = `Dawn gave the adapter "${device.info.device}" for backend=null`;
        return;
      }
      devices.set(adapterClass, device);
    } catch (error) {
      available = `Dawn's null backend is not available: ${(error as Error).message}`;
      return;
    }
  }
  // Read-backs of the null backend return stale bytes: zero them, so losses and tokens are 0.
  const probe = devices.get('software')!.gpu.createBuffer({ size: 4, usage: 0x1 /* MAP_READ */ });
  const prototype = Object.getPrototypeOf(probe) as GPUBuffer;
  probe.destroy();
  const original = prototype.getMappedRange;
  prototype.getMappedRange = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['getMappedRange']>) {
    const range = original.apply(this, args);
    new Uint8Array(range).fill(0);
    return range;
  };
  restore = () => {
    prototype.getMappedRange = original;
  };
});
afterAll(() => {
  restore();
  for (const device of devices.values()) device.destroy();
});

/** Skips with the reason where the null backend is absent; fails under CI. */
function requireNullBackend(context: { skip(note?: string): void }): void {
  if (available === null) return;
  if (process.env.CI) throw new Error(`${available}, and CI requires it`);
  context.skip(available);
}

const rows = Array.from({ length: 2 }, (_, r) => {
  const ids = Array.from({ length: 37 - 11 * r }, (_, t) => 3 + ((r * 7919 + t * 104729) % 509));
  return { inputIds: ids, labels: ids };
});

async function oneStep(model: CausalLM, lora: boolean): Promise<void> {
  const trainable = lora
    ? trainablePeftModel(
        await getPeftModel(model, loraConfig({ r: 8, lora_alpha: 16, target_modules: 'all-linear' }), {
          seed: 0,
        }),
      )
    : trainableCausalLM(model);
  await train({
    model: trainable,
    task: supervisedTask({ stage: 'pt' }),
    train: rows,
    args: { perDeviceTrainBatchSize: 2, maxSteps: 1, learningRate: 1e-3, maxGradNorm: 1, shuffle: false },
  });
}

describe("every kernel at real layer shapes compiles under WebGPU's default limits (Dawn's null backend)", () => {
  for (const adapterClass of CLASSES) {
    it(`${adapterClass} class: LoRA and full fine-tune steps and generate, head sizes 64 to 256`, async (context) => {
      requireNullBackend(context);
      const device = devices.get(adapterClass)!;
      expect(device.info.limits.maxStorageBuffersPerShaderStage).toBe(8);
      for (const [name, shape] of Object.entries(SHAPES)) {
        const config = createModelConfig({
          numHiddenLayers: 1,
          vocabSize: 512,
          tieWordEmbeddings: true,
          maxPositionEmbeddings: 512,
          bosTokenId: 1,
          eosTokenIds: [2],
          ...shape,
        });
        for (const run of ['lora', 'full', 'generate'] as const) {
          const model = initializeModel(new CausalLM(device, config), { seed: 0 });
          try {
            if (run !== 'generate') await oneStep(model, run === 'lora');
            // Generation after LoRA steps runs with the adapters (chat, eval, PPO's rollouts).
            if (run !== 'full')
              await generate(model, null, [rows[0].inputIds], { maxNewTokens: 2, stopTokens: [] });
          } catch (error) {
            throw new Error(`${adapterClass}, ${name}, ${run}: ${(error as Error).message.split('\n')[0]}`);
          } finally {
            model.dispose();
            device.trimPool();
          }
        }
      }
    });
  }
});
