import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // The first test of a file parses a 9-11 MB tokenizer.json (Qwen3, Llama-3): seconds on a busy 2-core runner.
    testTimeout: 30_000,
  },
});
