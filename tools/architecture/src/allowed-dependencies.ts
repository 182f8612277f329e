/**
 * The dependency graph docs/architecture/README.md documents, as data: for each workspace package, the
 * workspace packages it may depend on (in package.json, and so import). A new package is one more row;
 * an edge not listed here fails `dependency-graph.test.ts`.
 *
 *   safetensors, tokenizers, hub         no GPU, standalone (hub: downloads from the Hugging Face hub)
 *   data <- tokenizers                   no GPU
 *   gguf <- safetensors (tokenizers)     file format; used by nn and apps
 *   tensors <- nn <- peft, objectives <- train <- eval
 *   apps -> any package; the CLI also ships the web app's built files (@webtune/web, never its code)
 *   tools/test-utils: a devDependency of anything, imported by tests and bench scripts only
 */
const packages = {
  safetensors: '@webtune/safetensors',
  tokenizers: '@webtune/tokenizers',
  hub: '@webtune/hub',
  data: '@webtune/data',
  gguf: '@webtune/gguf',
  tensors: '@webtune/tensors',
  nn: '@webtune/nn',
  peft: '@webtune/peft',
  objectives: '@webtune/objectives',
  train: '@webtune/train',
  eval: '@webtune/eval',
} as const;
const { safetensors, tokenizers, hub, data, gguf, tensors, nn, peft, objectives, train } = packages;

/** Packages whose code must run without WebGPU (in a plain worker, in `webtune data validate`). */
export const WITHOUT_GPU: readonly string[] = [safetensors, tokenizers, hub, data];

/** The package that brings WebGPU in: none of WITHOUT_GPU may reach it, directly or not. */
export const GPU_ROOT = tensors;

/** Dev-only workspace packages: allowed as devDependencies anywhere, imported only by tests and benches. */
export const DEV_ONLY: readonly string[] = ['@webtune/test-utils'];

const everyPackage = Object.values(packages);

export const ALLOWED_DEPENDENCIES: Readonly<Record<string, readonly string[]>> = {
  [safetensors]: [],
  [tokenizers]: [],
  [hub]: [],
  [data]: [tokenizers],
  [gguf]: [safetensors, tokenizers, tensors],
  [tensors]: [],
  [nn]: [tensors, safetensors, tokenizers, gguf],
  [peft]: [tensors, nn, safetensors],
  [objectives]: [tensors, nn],
  [train]: [tensors, nn, peft, objectives, data, tokenizers, safetensors],
  [packages.eval]: [tensors, nn, peft, objectives, train, data, tokenizers, safetensors],
  '@webtune/web': everyPackage,
  '@webtune/cli': [...everyPackage, '@webtune/web'],
  '@webtune/kernel-lab': [tensors],
  '@webtune/test-utils': [],
  '@webtune/architecture': [],
};

/**
 * Dependencies a package declares for files, not code: the CLI serves @webtune/web's built `dist/`
 * and may resolve its package.json, but never imports its modules.
 */
export const ASSET_ONLY_DEPENDENCIES: Readonly<Record<string, readonly string[]>> = {
  '@webtune/cli': ['@webtune/web'],
};
