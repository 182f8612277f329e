// A real model for this package's end-to-end tests (not part of the public API).
import type { CausalLM } from '@webtune/nn';
import { loadModelDirectory } from '@webtune/nn/node';
import { createDevice, type Device } from '@webtune/tensors';
import { fixturePath } from '@webtune/test-utils';
import type { Tokenizer } from '@webtune/tokenizers';
import { afterAll, beforeAll } from 'vitest';

/** stories260K in the Hugging Face layout. */
export const STORIES = 'models/stories260K-hf';

export interface LoadedStories {
  device: Device;
  model: CausalLM;
  tokenizer: Tokenizer;
}

/**
 * Registers the hooks that open a device and load stories260K before a suite's tests and free both
 * after them; the object returned is filled in once the tests start.
 */
export function storiesModel(): LoadedStories {
  const loaded = {} as LoadedStories;
  beforeAll(async () => {
    loaded.device = await createDevice();
    const { model, tokenizer } = await loadModelDirectory(loaded.device, fixturePath(STORIES));
    loaded.model = model;
    loaded.tokenizer = tokenizer as Tokenizer;
  });
  afterAll(() => {
    loaded.model?.dispose();
    loaded.device?.destroy();
  });
  return loaded;
}
