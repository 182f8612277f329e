import { defineConfig } from 'vitest/config';

// The browser checks drive one Chromium against the built app: one file at a time, and long
// timeouts, since WebGPU runs on SwiftShader (the CPU) in CI.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
