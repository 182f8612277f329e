import { defineConfig } from 'vitest/config';

const include = ['src/**/*.test.ts'];

/**
 * Packages whose tests run on the GPU share one software adapter: their files run one after another,
 * each in a child process, so Dawn's native state never crosses worker threads.
 */
export function gpuTests(): ReturnType<typeof defineConfig> {
  return defineConfig({
    test: { include, pool: 'forks', fileParallelism: false, testTimeout: 120_000, hookTimeout: 120_000 },
  });
}

/** Packages without GPU code: files run in parallel; `testTimeout` where a file does slow set-up. */
export function cpuTests(testTimeout?: number): ReturnType<typeof defineConfig> {
  return defineConfig({ test: testTimeout === undefined ? { include } : { include, testTimeout } });
}
