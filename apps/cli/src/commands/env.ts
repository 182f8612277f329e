import { parseArgs } from 'node:util';
import {
  createDevice,
  formatBytes,
  matmulCapabilities,
  parseSubgroupMatrixConfigs,
  SUBGROUP_MATRIX_FEATURE,
  selectMatmulVariant,
  subgroupMatrixCheckOf,
} from '@webtune/tensors';
import { bold, table } from '../ui.js';
import { version } from '../version.js';

export const envHelp = `webtune env [--json] [--subgroup-matrix]

Prints the WebGPU adapter (vendor, architecture, class), its limits and features, the matmul
kernel selected for a 4096 x 4096 product and why, and versions.

  --subgroup-matrix  ask Dawn (Node) for allow_unsafe_apis, which it needs to list the
                     experimental chromium-experimental-subgroup-matrix feature (tensor cores);
                     where the adapter then has it, its kernel is self-checked and the result shown

Examples:
  webtune env
  webtune env --json --subgroup-matrix`;

export async function envCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, 'subgroup-matrix': { type: 'boolean' } },
    strict: true,
  });
  const device = await createDevice({
    dawnOptions: values['subgroup-matrix'] ? ['enable-dawn-features=allow_unsafe_apis'] : undefined,
  });
  const caps = matmulCapabilities(device);
  const matmulFor = (dtype: 'f32' | 'f16') => {
    const selection = selectMatmulVariant(caps, {
      dtype,
      rows: 4096,
      cols: 4096,
      folded: true,
      transposeA: false,
      chunked: false,
    });
    return { selected: selection.variant, selection_reason: selection.reason };
  };
  const adapterInfo = (device.gpu as { adapterInfo?: { subgroupMatrixConfigs?: unknown } }).adapterInfo;
  const report = {
    webtune: version(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    adapter: {
      backend: device.info.backend,
      vendor: device.info.vendor,
      architecture: device.info.architecture,
      device: device.info.device,
      description: device.info.description,
      class: device.info.adapterClass,
    },
    features: device.info.features,
    limits: device.info.limits,
    tuning: device.tuning,
    kernels: {
      matmul_4096: { f32: matmulFor('f32'), ...(device.hasF16 ? { f16: matmulFor('f16') } : {}) },
      subgroup_matrix: {
        feature: device.gpu.features.has(SUBGROUP_MATRIX_FEATURE),
        configs: parseSubgroupMatrixConfigs(adapterInfo?.subgroupMatrixConfigs).configs,
        self_check: subgroupMatrixCheckOf(device),
      },
    },
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const a = report.adapter;
    console.log(bold('adapter'));
    console.log(
      table([
        ['backend', a.backend],
        ['vendor', a.vendor || '(not reported)'],
        ['architecture', a.architecture || '(not reported)'],
        ['device', a.device || '(not reported)'],
        ['class', a.class],
      ]),
    );
    console.log(`\n${bold('features')}\n${report.features.join(', ')}`);
    console.log(`\n${bold('limits')}`);
    console.log(
      table(
        Object.entries(report.limits).map(([k, v]) => [
          k,
          k.endsWith('Size') ? `${v} (${formatBytes(v)})` : String(v),
        ]),
      ),
    );
    const kernels = report.kernels;
    console.log(`\n${bold('kernels')}`);
    console.log(
      table([
        ...Object.entries(kernels.matmul_4096).map(([dtype, m]) => [
          `matmul ${dtype} 4096`,
          `${m.selected} (${m.selection_reason})`,
        ]),
        [
          'subgroup-matrix',
          kernels.subgroup_matrix.feature
            ? Object.entries(kernels.subgroup_matrix.self_check)
                .map(([dtype, c]) => `${dtype} ${c.passed ? 'passed' : 'failed'}: ${c.reason}`)
                .join('; ') || 'no self-check'
            : `not offered${values['subgroup-matrix'] ? '' : ' (try --subgroup-matrix)'}`,
        ],
      ]),
    );
    console.log(`\n${bold('versions')}\nwebtune ${report.webtune}, node ${report.node}, ${report.platform}`);
  }
  device.destroy();
  return 0;
}
