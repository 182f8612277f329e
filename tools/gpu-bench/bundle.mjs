// Packs the one-command GPU benchmark: everything a bare Linux x86-64 machine with a Vulkan
// driver needs to run tools/gpu-bench/run.mjs, in one archive under 64 MiB.
//
//   pnpm build && node tools/gpu-bench/bundle.mjs [--out=DIR]
//   scp DIR/webtune-gpu-bench.tar.gz gpu-box: && ssh gpu-box 'tar xzf webtune-gpu-bench.tar.gz && webtune-gpu-bench/run.sh'
//
// The archive holds: bin/node (this Node binary), run.mjs (the runner with the built @webtune
// packages and their npm dependencies bundled in by esbuild), node_modules/webgpu (its loader and
// Dawn's linux-x64 dawn.node), lib/libvulkan.so.1 (the Vulkan loader of this machine, used only
// when the target has none), torch_baseline.py (the Transformers + PEFT side; the target's own
// Python supplies torch, transformers and peft), capabilities.mjs (what the adapter offers the
// kernel selection), vulkan-cooperative-matrix.c (what the Vulkan driver reports for subgroup
// matrices) and run.sh.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const outDir =
  args.findLast((a) => a.startsWith('--out='))?.slice(6) ?? join(root, 'tools', 'gpu-bench', 'out');
const LIMIT = 64 * 1024 * 1024;
const NAME = 'webtune-gpu-bench';

if (process.platform !== 'linux' || process.arch !== 'x64') {
  throw new Error(
    `bundle.mjs packs this machine's Node binary: run it on Linux x86-64 (this is ${process.platform}-${process.arch})`,
  );
}
const packages = [
  'tensors',
  'nn',
  'peft',
  'train',
  'objectives',
  'data',
  'safetensors',
  'gguf',
  'tokenizers',
];
for (const name of packages) {
  if (!existsSync(join(root, 'packages', name, 'dist', 'index.js'))) {
    throw new Error(`packages/${name}/dist is missing: run \`pnpm build\` first`);
  }
}

const stage = join(outDir, NAME);
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'bin'), { recursive: true });
mkdirSync(join(stage, 'lib'), { recursive: true });

// 1. The runner and every @webtune package it reaches, in one ES module; webgpu stays outside
//    (it loads a native addon next to itself).
const fromTsup = createRequire(realpathSync(join(root, 'node_modules', 'tsup', 'package.json')));
const esbuild = fromTsup('esbuild');
const webtunePackages = {
  name: 'webtune-packages',
  setup(build) {
    build.onResolve({ filter: /^@webtune\// }, (args) => {
      const [, name, sub] = args.path.match(/^@webtune\/([^/]+)(?:\/(.+))?$/);
      const file = join(root, 'packages', name, 'dist', `${sub ?? 'index'}.js`);
      if (!existsSync(file)) return { errors: [{ text: `${args.path}: ${file} not built` }] };
      return { path: file };
    });
  },
};
/** One script of this folder and what it imports, as one ES module in the archive. */
const bundleScript = (name) =>
  esbuild.build({
    entryPoints: [join(here, name)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: join(stage, name),
    external: ['webgpu'],
    plugins: [webtunePackages],
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
await bundleScript('run.mjs');

// 2. The webgpu package: its loader and the linux-x64 Dawn addon only.
const webgpu = dirname(
  realpathSync(join(root, 'packages', 'tensors', 'node_modules', 'webgpu', 'package.json')),
);
const webgpuTarget = join(stage, 'node_modules', 'webgpu');
mkdirSync(join(webgpuTarget, 'dist'), { recursive: true });
for (const file of ['package.json', 'index.js', 'LICENSE.md']) {
  if (existsSync(join(webgpu, file))) copyFileSync(join(webgpu, file), join(webgpuTarget, file));
}
cpSync(join(webgpu, 'dist', 'linux-x64'), join(webgpuTarget, 'dist', 'linux-x64'), { recursive: true });

// 3. Node itself, the Vulkan loader when this machine has one, the baseline and the launcher.
copyFileSync(process.execPath, join(stage, 'bin', 'node'));
const loader = vulkanLoader();
if (loader) copyFileSync(loader, join(stage, 'lib', 'libvulkan.so.1'));
copyFileSync(join(here, 'torch_baseline.py'), join(stage, 'torch_baseline.py'));
// The adapter's features, subgroup sizes and limits: `bin/node capabilities.mjs` (WebGPU's
// default limits from @webtune/tensors bundled in).
await bundleScript('capabilities.mjs');
// What the Vulkan driver itself reports for Dawn's subgroup-matrix conditions (cooperative
// matrices, the memory model, full subgroups): `gcc -o vkcm vulkan-cooperative-matrix.c -ldl && ./vkcm`.
copyFileSync(join(here, 'vulkan-cooperative-matrix.c'), join(stage, 'vulkan-cooperative-matrix.c'));
writeFileSync(
  join(stage, 'run.sh'),
  `#!/bin/sh
# webtune's GPU benchmark: prints one JSON report on stdout (progress on stderr).
# Options: --scale=tiny, --python=/path/to/python (torch + transformers + peft), --only=<regexp>,
# --host-only (only the host cost on the null backend), --no-host.
here="$(cd "$(dirname "$0")" && pwd)"
# The target's own Vulkan loader wins; the bundled one is the fallback.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  export LD_LIBRARY_PATH="$here/lib\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
exec "$here/bin/node" --expose-gc "$here/run.mjs" "$@"
`,
  { mode: 0o755 },
);
writeFileSync(
  join(stage, 'VERSION.json'),
  `${JSON.stringify(
    {
      node: process.version,
      webgpu: JSON.parse(readFileSync(join(webgpu, 'package.json'), 'utf8')).version,
      vulkanLoader: loader ?? null,
      commit: gitCommit(),
    },
    null,
    2,
  )}\n`,
);

// 4. One archive, checked against the limit.
const archive = join(outDir, `${NAME}.tar.gz`);
execFileSync('tar', ['-C', outDir, '-cf', archive, '--use-compress-program=gzip -9', NAME]);
const bytes = statSync(archive).size;
console.log(`${archive}: ${(bytes / 2 ** 20).toFixed(1)} MiB (limit 64 MiB)`);
if (bytes > LIMIT) throw new Error(`the archive is ${bytes} bytes, over the 64 MiB limit`);

function vulkanLoader() {
  try {
    const line = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => /libvulkan\.so\.1 .*x86-64/.test(l));
    const path = line?.split('=>')[1]?.trim();
    return path && existsSync(path) ? realpathSync(path) : null;
  } catch {
    return null;
  }
}

function gitCommit() {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}
