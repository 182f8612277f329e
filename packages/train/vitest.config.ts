import { defineConfig } from 'vitest/config';

// GPU tests share one software adapter: run files one after another in a child process each,
// so Dawn's native state never crosses worker threads.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
