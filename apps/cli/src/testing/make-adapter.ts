/** Test helper: writes a PEFT LoRA adapter with non-zero B (so it changes the outputs) for a model folder. */
import { directorySink, loadModelDirectory } from '@webtune/nn/node';
import { getPeftModel, loraConfig, saveAdapter } from '@webtune/peft';
import { createDevice } from '@webtune/tensors';

export async function makeAdapter(modelDir: string, outDir: string, seed = 1): Promise<void> {
  const device = await createDevice();
  try {
    const { model } = await loadModelDirectory(device, modelDir);
    const peft = await getPeftModel(
      model,
      loraConfig({
        r: 4,
        lora_alpha: 64,
        target_modules: ['q_proj', 'v_proj', 'down_proj'],
        init_lora_weights: false,
      }),
      { seed },
    );
    await saveAdapter(peft, directorySink(outDir), { baseModelNameOrPath: modelDir });
  } finally {
    device.destroy();
  }
}
