import { defineConfig } from 'vitest/config';

// End-to-end tests run the built CLI in subprocesses: one file at a time on the shared adapter.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
  },
});
