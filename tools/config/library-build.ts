import { defineConfig, type Options } from 'tsup';

/**
 * The build every library package shares: ESM with declarations and source maps, for ES2022.
 * A package names only its entry points and the dependencies it leaves to the caller.
 */
export function libraryBuild(entry: string[], external: string[] = []): ReturnType<typeof defineConfig> {
  const options: Options = {
    entry,
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
  };
  return defineConfig(external.length > 0 ? { ...options, external } : options);
}
